/** `outbox-sync ui`: the outbox page for operators (servers/ui/run-ui.ts). */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';

export function registerUi(program: Command): void {
  program
    .command('ui')
    .description('the outbox page for operators: status, activity, failed and dead messages, retry (OUTBOX_SYNC_UI_TOKENS)')
    .action(async () => {
      const config = loadConfig();
      const { runUi } = await import('../../servers/ui/run-ui');
      await runUi(config);
    });
}
