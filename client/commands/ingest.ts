/** `outbox-sync ingest`: the HTTP server for devices (servers/ingest/run-ingest.ts). */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';

export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description('the HTTP server for devices: POST /v1/messages, GET /v1/messages/:id, /healthz, /metrics')
    .action(async () => {
      const config = loadConfig();
      const { runIngest } = await import('../../servers/ingest/run-ingest');
      await runIngest(config);
    });
}
