/**
 * `outbox-sync ingest`: the HTTP server for devices, until SIGINT or SIGTERM. On a signal it stops
 * accepting connections, answers the requests in flight (their messages are committed first), then
 * closes the database pool.
 */
import pg from 'pg';
import { ConfigError, type Config } from '../config';
import { pgSettings } from '../database/connect';
import { processLogger } from '../client/log';
import { buildIngestServer } from './server';

export { buildIngestServer, type IngestSettings, type IngestStores } from './server';

export async function runIngest(config: Config): Promise<void> {
  if (config.ingestTokens.length === 0) throw new ConfigError('INGEST_TOKENS: ingest needs at least one source=token pair');
  const outbox = new pg.Pool(pgSettings(config.outboxDatabaseUrl, { max: 10 }));
  outbox.on('error', () => undefined); // an idle connection the server dropped; the pool replaces it
  const app = buildIngestServer({ outbox }, config, {
    onInternalError: (err) => processLogger.error('request failed', { error: (err as Error)?.message ?? String(err) }),
  });
  const stopped = untilSignal();
  try {
    const address = await app.listen({ port: config.ingestPort, host: config.ingestHost });
    processLogger.info('ingest listening', { address, sources: [...new Set(config.ingestTokens.map((t) => t.name))].length });
    const signal = await stopped;
    processLogger.info('ingest stopping: answering the requests in flight', { signal });
  } finally {
    await app.close();
    await outbox.end();
  }
  processLogger.info('ingest stopped');
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}
