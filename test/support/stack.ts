/**
 * The real servers every integration test talks to, set up once per run by test/hooks.ts: a Temporal dev
 * server of our own (or the server TEMPORAL_TEST_ADDRESS names, reached with the TEMPORAL_TEST_* settings
 * below, as `npm run test:cluster` does for the production server over mTLS), template databases already
 * migrated, and the workflow bundle.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import pg from 'pg';
import { pgSettings } from '../../stores/postgres/connect';
import { databaseUrl, dropDatabase, migrateDatabase } from '../../stores/postgres/migrate';
import { loadConfig } from '../../config/config';
import { temporalConnectionOptions } from '../../temporal/connection';

import { freeLoopbackPort as freePort } from '../../observability/metrics-server';

export { databaseUrl, dropDatabase, freePort };
import { startDevServer, type DevServer } from '../../temporal/dev-server';
import { registerSearchAttributes } from '../../temporal/search-attributes-register';

export interface Stack {
  temporalAddress: string;
  namespace: string;
  /** The settings that reach this Temporal (address, namespace, TLS), by their environment names. */
  temporalEnv: Record<string, string>;
  /** Shared by every test: kept open for the whole run so the SDK runtime keeps our logger. */
  nativeConnection: NativeConnection;
  connection: Connection;
  client: Client;
  workflowBundle: WorkflowBundleWithSourceMap;
  /** A URL of the PostgreSQL server (any database); test databases are made beside it. */
  postgresUrl: string;
  redisUrl: string;
  server: DevServer | null;
  dataDir: string;
}

let stack: Stack | undefined;

// Per run, so that two runs on one machine do not drop each other's templates.
export const TEMPLATE_OUTBOX = `outbox_sync_template_${process.pid}_outbox`;
export const TEMPLATE_TARGET = `outbox_sync_template_${process.pid}_target`;

export function getStack(): Stack {
  if (!stack) throw new Error('the test stack is not set up (run the tests through mocha with test/hooks)');
  return stack;
}

export async function setUpStack(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger((process.env.TEST_LOG_LEVEL as 'WARN') ?? 'ERROR') });
  const dataDir = mkdtempSync(join(tmpdir(), 'outbox-sync-test-'));
  const postgresUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://127.0.0.1:5432/postgres';
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const namespace = process.env.TEMPORAL_TEST_NAMESPACE ?? 'default';

  let server: DevServer | null = null;
  let temporalAddress = process.env.TEMPORAL_TEST_ADDRESS;
  const ready = Promise.all([
    bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows/sync-message'), logger: new DefaultLogger('ERROR') }),
    (async () => {
      if (temporalAddress) return;
      server = await startDevServer({
        port: await freePort(),
        uiPort: null,
        dbFile: join(dataDir, 'temporal.sqlite'),
        logFile: join(dataDir, 'temporal.log'),
      });
      temporalAddress = server.address;
    })(),
    makeTemplates(postgresUrl),
  ]);
  let bundle: WorkflowBundleWithSourceMap;
  try {
    [bundle] = await ready;
  } catch (err) {
    // A half-made stack must not keep the run alive: stop the server that did start.
    await ready.catch(() => undefined);
    await (server as DevServer | null)?.stop();
    throw err;
  }
  const temporalEnv = { ...testTlsSettings(), TEMPORAL_ADDRESS: temporalAddress!, TEMPORAL_NAMESPACE: namespace };
  // Reached as the product reaches it, so that the TLS settings are those a user sets.
  const options = temporalConnectionOptions(loadConfig(temporalEnv));
  const nativeConnection = await NativeConnection.connect(options);
  const connection = await Connection.connect(options);
  await registerSearchAttributes(connection, namespace);
  stack = {
    temporalAddress: temporalAddress!,
    namespace,
    temporalEnv,
    nativeConnection,
    connection,
    client: new Client({ connection, namespace }),
    workflowBundle: bundle,
    postgresUrl,
    redisUrl,
    server,
    dataDir,
  };
}

/** TEMPORAL_TEST_TLS_CA_FILE and the rest, as the TEMPORAL_TLS_* settings of the processes under test. */
function testTlsSettings(): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const name of ['TLS', 'TLS_CA_FILE', 'TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_SERVER_NAME']) {
    const value = process.env[`TEMPORAL_TEST_${name}`];
    if (value) settings[`TEMPORAL_${name}`] = value;
  }
  return settings;
}

export async function tearDownStack(): Promise<void> {
  if (!stack) return;
  const { connection, nativeConnection, server, dataDir, postgresUrl } = stack;
  stack = undefined;
  await connection.close();
  await nativeConnection.close();
  await server?.stop();
  await dropDatabase(postgresUrl, TEMPLATE_OUTBOX);
  await dropDatabase(postgresUrl, TEMPLATE_TARGET);
  rmSync(dataDir, { recursive: true, force: true });
}

/** Migrated template databases; each test pipeline clones its own pair from them. */
async function makeTemplates(postgresUrl: string): Promise<void> {
  for (const [name, set] of [
    [TEMPLATE_OUTBOX, 'outbox'],
    [TEMPLATE_TARGET, 'target'],
  ] as const) {
    await dropDatabase(postgresUrl, name);
    await migrateDatabase(databaseUrl(postgresUrl, name), set);
  }
}

export async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client(pgSettings(getStackOrEnvPostgres()));
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function getStackOrEnvPostgres(): string {
  return stack?.postgresUrl ?? process.env.TEST_POSTGRES_URL ?? 'postgres://127.0.0.1:5432/postgres';
}

