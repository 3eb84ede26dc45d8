/** `outbox-sync prune`: deletes completed messages older than a duration, in batches. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';
import { pruneCompleted } from '../../stores/outbox/messages';
import { parseDuration, withStores } from '../command';
import { progressBar } from '../progress';

export function registerPrune(program: Command): void {
  program
    .command('prune')
    .description('delete completed messages older than a duration')
    .requiredOption('--older-than <duration>', 'e.g. 7d, 12h, 30m, 45s')
    .option('--json', 'print JSON: {"deleted": n}')
    .action(async (opts: { olderThan: string; json?: boolean }) => {
      const ms = parseDuration(opts.olderThan, '--older-than');
      await withStores(loadConfig(), async ({ outbox }) => {
        const bar = progressBar('pruning');
        const deleted = await pruneCompleted(outbox, ms, (done, total) => bar.update(done, total)).finally(() => bar.stop());
        if (opts.json) return console.log(JSON.stringify({ deleted }));
        console.log(`${deleted} completed message(s) deleted`);
      });
    });
}
