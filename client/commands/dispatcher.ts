/** `outbox-sync dispatcher`: claims, starts, redrives and reconciles until stopped (dispatcher/run-dispatcher.ts). */
import type { Command } from 'commander';
import { addProcess } from '../command';

export function registerDispatcher(program: Command): void {
  addProcess(program, 'dispatcher', 'claim pending messages, start their workflows, redrive failed ones, reconcile stuck ones', async (config) => (await import('../../dispatcher/run-dispatcher')).runDispatcher(config));
}
