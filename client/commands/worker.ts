/** `outbox-sync worker`: runs workflows and activities until stopped (worker/run-worker.ts). */
import type { Command } from 'commander';
import { addProcess } from '../command';

export function registerWorker(program: Command): void {
  addProcess(program, 'worker', 'run workflows and activities (many may run at once)', async (config) => (await import('../../worker/run-worker')).runWorker(config));
}
