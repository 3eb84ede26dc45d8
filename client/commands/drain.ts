/** `outbox-sync drain`: waits until no message is open (pending, processing or failed), or exits 1 on timeout. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';
import { readStatus } from '../../stores/outbox/messages';
import { parseDuration, withStores } from '../command';
import { progressBar } from '../progress';

export function registerDrain(program: Command): void {
  program
    .command('drain')
    .description('wait until no message is pending, processing or failed (waiting for a redrive); exit 1 on timeout')
    .option('--timeout <duration>', 'give up after this long, e.g. 10m', '1h')
    .option('--json', 'print the final counts as JSON, like status --json')
    .action(async (opts: { timeout: string; json?: boolean }) => {
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const config = loadConfig();
      await withStores(config, async ({ outbox }) => {
        const bar = progressBar('draining');
        const deadline = Date.now() + timeoutMs;
        let status = await readStatus(outbox, config);
        const open = () => status.counts.pending + status.counts.processing + status.counts.failed;
        let total = open();
        try {
          while (open() > 0 && Date.now() < deadline) {
            total = Math.max(total, open());
            bar.update(total - open(), total);
            await new Promise((r) => setTimeout(r, 500));
            status = await readStatus(outbox, config);
          }
          bar.update(total - open(), total);
        } finally {
          bar.stop();
        }
        if (opts.json) console.log(JSON.stringify(status));
        else console.log(`${open()} message(s) still open; ${status.counts.completed} completed, ${status.counts.dead} dead`);
        if (open() > 0) throw new Error(`not drained after ${opts.timeout}: ${open()} message(s) still pending, processing or failed`);
      });
    });
}
