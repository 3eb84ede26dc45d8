/** `outbox-sync codec-server`: decrypts payloads for the Temporal UI and CLI (servers/codec-server.ts). */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';

export function registerCodecServer(program: Command): void {
  program
    .command('codec-server')
    .description('decrypts payloads for the Temporal UI and CLI (POST /codec/decode, /codec/encode), for operators with a token')
    .action(async () => {
      const config = loadConfig();
      const { runCodecServer } = await import('../../servers/codec-server');
      await runCodecServer(config);
    });
}
