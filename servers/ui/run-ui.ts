/**
 * `outbox-sync ui`: the outbox page for operators, until SIGINT or SIGTERM. A process of its own, apart
 * from `ingest`: devices reach ingest, operators reach this, and an admin surface should not listen where
 * devices do. Temporal is connected on first need (a message's executions) and again after a failure, so
 * the page starts, and shows the outbox, while Temporal is down.
 */
import type { Client } from '@temporalio/client';
import pg from 'pg';
import { ConfigError, type Config } from '../../config/config';
import { connectTemporal } from '../../temporal/connection';
import { pgSettings } from '../../stores/postgres/connect';
import { untilSignal } from '../until-signal';
import { createLogger } from '../../observability/logging';
import { listExecutions, type Execution } from '../../temporal/executions';
import { buildUiServer } from './ui-server';

export { buildUiServer, type UiOptions, type UiSettings, type UiStores } from './ui-server';

export async function runUi(config: Config): Promise<void> {
  if (config.uiTokens.length === 0) throw new ConfigError('OUTBOX_SYNC_UI_TOKENS: the outbox page needs at least one name=token pair');
  const logger = createLogger(config, 'ui');
  const outbox = new pg.Pool(pgSettings(config.outboxDatabaseUrl, { max: 5, connectionTimeoutMillis: 5_000 }));
  outbox.on('error', () => undefined); // an idle connection the server dropped; the pool replaces it
  const temporal = lazyTemporal(config);
  const app = buildUiServer({ outbox }, config, { executions: temporal.executions, logger });
  const stopped = untilSignal();
  try {
    const address = await app.listen({ port: config.uiPort, host: config.uiHost });
    logger.info({ address, tokens: config.uiTokens.length, operators: config.uiOperators.length }, 'outbox page listening');
    const signal = await stopped;
    logger.info({ signal }, 'outbox page stopping');
  } finally {
    await app.close();
    await temporal.close();
    await outbox.end();
  }
  logger.info('outbox page stopped');
}

/** A Temporal client made on first use; a failed connection is forgotten, so the next request tries again. */
export function lazyTemporal(config: Config): { executions: (workflowId: string) => Promise<Execution[]>; close(): Promise<void> } {
  let connecting: Promise<Awaited<ReturnType<typeof connectTemporal>>> | null = null;
  const client = (): Promise<Client> => {
    // Not the default ten seconds: the page is waiting.
    connecting ??= connectTemporal(config, 3_000);
    const attempt = connecting;
    return attempt.then(
      (connected) => connected.client,
      (err) => {
        if (connecting === attempt) connecting = null;
        throw err;
      },
    );
  };
  return {
    executions: async (workflowId) => listExecutions(await client(), workflowId),
    async close() {
      const open = connecting;
      connecting = null;
      await open?.then((c) => c.connection.close()).catch(() => undefined);
    },
  };
}
