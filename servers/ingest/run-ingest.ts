/**
 * `outbox-sync ingest`: the HTTP server for devices, until SIGINT or SIGTERM. On a signal it stops
 * accepting connections, answers the requests in flight (their messages are committed first), then
 * closes the database pool.
 */
import pg from 'pg';
import { ConfigError, type Config } from '../../config/config';
import { pgSettings } from '../../stores/postgres/connect';
import { untilSignal } from '../until-signal';
import { createLogger } from '../../observability/logging';
import { collectProcessMetrics, registerOutboxGauges } from '../../observability/metrics';
import { buildIngestServer } from './ingest-server';

export { buildIngestServer, type IngestSettings, type IngestStores } from './ingest-server';

export async function runIngest(config: Config): Promise<void> {
  if (config.ingestTokens.length === 0) throw new ConfigError('INGEST_TOKENS: ingest needs at least one source=token pair');
  const outbox = new pg.Pool(pgSettings(config.outboxDatabaseUrl, { max: 10, connectionTimeoutMillis: 5_000 }));
  outbox.on('error', () => undefined); // an idle connection the server dropped; the pool replaces it
  const logger = createLogger(config, 'ingest');
  collectProcessMetrics();
  registerOutboxGauges(outbox, config);
  const app = buildIngestServer({ outbox }, config, {
    onInternalError: (err) => logger.error({ error: (err as Error)?.message ?? String(err) }, 'request failed'),
    onUnavailable: (reason) => logger.warn(reason),
  });
  const stopped = untilSignal();
  try {
    const address = await app.listen({ port: config.ingestPort, host: config.ingestHost });
    logger.info({ address, sources: new Set(config.ingestTokens.map((t) => t.name)).size }, 'ingest listening');
    const signal = await stopped;
    logger.info({ signal }, 'ingest stopping: answering the requests in flight');
  } finally {
    await app.close();
    await outbox.end();
  }
  logger.info('ingest stopped');
}
