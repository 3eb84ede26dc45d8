/** `outbox-sync status`: counts per status and the age of the oldest pending message. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';
import { readStatus } from '../../stores/outbox/messages';
import { withStores } from '../command';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('counts per status and the age of the oldest pending message')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      await withStores(config, async ({ outbox }) => {
        const status = await readStatus(outbox);
        if (opts.json) return console.log(JSON.stringify(status));
        for (const [name, n] of Object.entries(status.counts)) console.log(`${name.padEnd(11)} ${n}`);
        console.log(`oldest pending: ${status.oldestPendingSeconds} s`);
      });
    });
}
