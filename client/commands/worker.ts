/** `outbox-sync worker`: runs workflows and activities until stopped (worker/run-worker.ts). */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run workflows and activities (many may run at once)')
    .action(async () => {
      const config = loadConfig();
      const { runWorker } = await import('../../worker/run-worker');
      await runWorker(config);
    });
}
