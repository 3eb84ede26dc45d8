/** `outbox-sync codec-server`: decrypts payloads for the Temporal UI and CLI (servers/codec-server.ts). */
import type { Command } from 'commander';
import { addProcess } from '../command';

export function registerCodecServer(program: Command): void {
  addProcess(program, 'codec-server', 'decrypts payloads for the Temporal UI and CLI (POST /codec/decode, /codec/encode), for operators with a token', async (config) => (await import('../../servers/codec-server')).runCodecServer(config));
}
