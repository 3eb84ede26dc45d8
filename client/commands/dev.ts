/** `outbox-sync dev`: the whole pipeline on this machine in one process (run-dev.ts). */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';

export function registerDev(program: Command): void {
  program
    .command('dev')
    .description('all in one: Temporal dev server (SQLite file, Web UI), migrate, worker, dispatcher')
    .option('--demo', 'enqueue a demo batch, wait until it is completed and show it')
    .option('--data-dir <dir>', 'where the Temporal SQLite file lives', '.data')
    .action(async (opts: { demo?: boolean; dataDir: string }) => {
      const config = loadConfig();
      // The Temporal worker's modules load only for the commands that run one: the others start fast.
      const { runDev } = await import('./run-dev');
      await runDev(config, { demo: Boolean(opts.demo), dataDir: opts.dataDir });
    });
}
