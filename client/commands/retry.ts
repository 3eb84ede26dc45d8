/** `outbox-sync retry`: sends failed or dead messages, chosen by id or by status, back through the pipeline. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';
import { retryMessages } from '../../stores/outbox/state-machine';
import { UsageError, parseId, withStores } from '../command';
import { progressBar } from '../progress';

export function registerRetry(program: Command): void {
  program
    .command('retry')
    .description('send failed or dead messages back through the pipeline')
    .argument('[ids...]', 'message ids')
    .option('--dead', 'all dead messages')
    .option('--failed', 'all failed messages')
    .option('--json', 'print JSON: {"retried": n, "ids": [...]}')
    .action(async (ids: string[], opts: { dead?: boolean; failed?: boolean; json?: boolean }) => {
      const chosen = [ids.length > 0, Boolean(opts.dead), Boolean(opts.failed)].filter(Boolean).length;
      if (chosen !== 1) throw new UsageError('retry takes message ids, --dead or --failed (exactly one of them)');
      const select = opts.dead ? { status: 'dead' as const } : opts.failed ? { status: 'failed' as const } : { ids: ids.map(parseId) };
      await withStores(loadConfig(), async ({ outbox }) => {
        const bar = progressBar('retrying');
        const moved = await retryMessages(outbox, select, { actor: 'cli', onProgress: (done, total) => bar.update(done, total) }).finally(() =>
          bar.stop(),
        );
        if (opts.json) return console.log(JSON.stringify({ retried: moved.length, ids: moved }));
        console.log(`${moved.length} message(s) sent back to pending${moved.length ? `: ${moved.join(' ')}` : ''}`);
      });
    });
}
