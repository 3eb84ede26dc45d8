/** `outbox-sync status`: counts per status, the age of the oldest pending message, and how many are overdue. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';
import { readStatus } from '../../stores/outbox/messages';
import { withStores } from '../command';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('counts per status, the age of the oldest pending message, and how many are past the SLA')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      await withStores(config, async ({ outbox }) => {
        const status = await readStatus(outbox, config);
        if (opts.json) return console.log(JSON.stringify(status));
        for (const [name, n] of Object.entries(status.counts)) console.log(`${name.padEnd(11)} ${n}`);
        console.log(`oldest pending: ${status.oldestPendingSeconds} s`);
        console.log(status.slaSeconds === null ? 'overdue: no SLA (OUTBOX_SYNC_SLA_SECONDS is not set)' : `overdue: ${status.overdue} (not completed ${status.slaSeconds} s after they were sent)`);
      });
    });
}
