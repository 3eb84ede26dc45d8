/** `outbox-sync ingest`: the HTTP server for devices (servers/ingest/run-ingest.ts). */
import type { Command } from 'commander';
import { addProcess } from '../command';

export function registerIngest(program: Command): void {
  addProcess(program, 'ingest', 'the HTTP server for devices: POST /v1/messages, GET /v1/messages/:id, /healthz, /metrics', async (config) => (await import('../../servers/ingest/run-ingest')).runIngest(config));
}
