/** `outbox-sync dispatcher`: claims, starts, redrives and reconciles until stopped (dispatcher/run-dispatcher.ts). */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';

export function registerDispatcher(program: Command): void {
  program
    .command('dispatcher')
    .description('claim pending messages, start their workflows, redrive failed ones, reconcile stuck ones')
    .action(async () => {
      const config = loadConfig();
      const { runDispatcher } = await import('../../dispatcher/run-dispatcher');
      await runDispatcher(config);
    });
}
