/**
 * One isolated pipeline per test: its own outbox and target databases (cloned from the migrated
 * templates), its own Redis prefix and Temporal task queue, and optionally a fault proxy in front of the
 * target database or Redis. Real servers throughout.
 *
 * Closing drops the databases and the Redis keys, unless a test that ran while the pipeline was open
 * failed: then they are kept, and their names and the Redis prefix are printed once, so that a developer
 * can look at what the failed test left (`psql -d outbox_sync_t_…_outbox`, `redis-cli --scan --pattern
 * 'outbox_sync_t_…:*'`) and drop them by hand.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { loadConfig, type Config } from '../../config/config';
import { openStores, type Stores } from '../../stores/stores';
import { Dispatcher, type DispatcherLogger } from '../../dispatcher/dispatcher';
import { streamsTarget } from '../../dispatcher/publish';
import { readMessages, type OutboxMessage } from '../../stores/outbox/messages';
import { readStreamCursor } from '../../stores/outbox/stream-cursor';
import { dispatcherSettings } from '../../dispatcher/run-dispatcher';
import { activitySettings, createSyncWorker } from '../../worker/worker';
import { pipelineMetrics } from '../../observability/metrics';
import { FaultProxy } from './fault-proxy';
import { UserDatabases, type UserTables } from './user-databases';
import { childEnv } from './processes';
import { TEMPLATE_OUTBOX, TEMPLATE_TARGET, adminQuery, databaseUrl, dropDatabase, getStack } from './stack';
import pg from 'pg';
import { pgSettings } from '../../stores/postgres/connect';

export interface PipelineOptions {
  /** Settings by their environment names, over the fast test defaults below. */
  env?: Record<string, string>;
  proxyTarget?: boolean;
  proxyRedis?: boolean;
  /**
   * The user's own databases (PostgreSQL and MariaDB) with these tables, and the mapping file made from
   * their URLs: the pipeline sets OUTBOX_SYNC_TARGETS to it and migrates the bookkeeping tables.
   */
  userTables?: UserTables & { mapping: (urls: { postgres: string; mysql: string }) => unknown };
}

/** Fast settings for tests: short backoffs, few attempts, quick polling. */
const TEST_ENV: Record<string, string> = {
  OUTBOX_SYNC_MAX_EXECUTIONS: '3',
  OUTBOX_SYNC_REDRIVE_BASE_MS: '200',
  OUTBOX_SYNC_REDRIVE_MAX_MS: '1000',
  OUTBOX_SYNC_LEASE_MS: '10000',
  OUTBOX_SYNC_POLL_MS: '100',
  OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '4',
  OUTBOX_SYNC_ACTIVITY_INITIAL_INTERVAL_MS: '100',
  OUTBOX_SYNC_ACTIVITY_MAX_INTERVAL_MS: '500',
  OUTBOX_SYNC_ACTIVITY_TIMEOUT_MS: '5000',
};

/** The test running now and how many have failed so far in this run, told by the root hooks in test/hooks.ts. */
const tests: { current: Mocha.Test | undefined; failed: number } = { current: undefined, failed: 0 };

export function testStarted(test: Mocha.Test | undefined): void {
  tests.current = test;
}

export function testEnded(test: Mocha.Test | undefined): void {
  if (test?.state === 'failed') tests.failed++;
}

const quietLogger: DispatcherLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export class TestPipeline {
  readonly workers: { worker: Worker; run: Promise<void> }[] = [];
  readonly dispatchers: Dispatcher[] = [];
  /** Failed tests in the run when this pipeline was made: more when it closes means one of its own failed. */
  private readonly failedBefore = tests.failed;

  private constructor(
    readonly name: string,
    /** The settings by their environment names, as the pipeline loaded them. */
    readonly env: Record<string, string>,
    readonly config: Config,
    readonly stores: Stores,
    readonly targetProxy: FaultProxy | null,
    readonly redisProxy: FaultProxy | null,
    readonly user: UserDatabases | null,
  ) {}

  static async create(options: PipelineOptions = {}): Promise<TestPipeline> {
    const stack = getStack();
    const name = `outbox_sync_t_${randomBytes(4).toString('hex')}`;
    await adminQuery(`CREATE DATABASE ${name}_outbox TEMPLATE ${TEMPLATE_OUTBOX}`);
    await adminQuery(`CREATE DATABASE ${name}_target TEMPLATE ${TEMPLATE_TARGET}`);
    const postgres = new URL(stack.postgresUrl);
    const redis = new URL(stack.redisUrl);
    const targetProxy = options.proxyTarget ? await FaultProxy.start(postgres.hostname, Number(postgres.port || 5432)) : null;
    const redisProxy = options.proxyRedis ? await FaultProxy.start(redis.hostname, Number(redis.port || 6379)) : null;
    const targetServer = targetProxy ? `postgres://127.0.0.1:${targetProxy.port}/postgres` : stack.postgresUrl;
    const env: Record<string, string> = {
      ...TEST_ENV,
      OUTBOX_DATABASE_URL: databaseUrl(stack.postgresUrl, `${name}_outbox`),
      TARGET_DATABASE_URL: databaseUrl(targetServer, `${name}_target`),
      REDIS_URL: redisProxy ? `redis://127.0.0.1:${redisProxy.port}` : stack.redisUrl,
      OUTBOX_SYNC_REDIS_PREFIX: `${name}:`,
      ...stack.temporalEnv,
      OUTBOX_SYNC_TASK_QUEUE: name,
      OUTBOX_SYNC_WORKFLOW_ID_PREFIX: `${name}-message-`,
      ...options.env,
    };
    let user: UserDatabases | null = null;
    if (options.userTables) {
      user = await UserDatabases.create(name, options.userTables);
      const file = join(getStack().dataDir, `${name}-targets.json`);
      writeFileSync(file, JSON.stringify(options.userTables.mapping({ postgres: user.postgresUrl, mysql: user.mysqlUrl })));
      env.OUTBOX_SYNC_TARGETS = file;
    }
    const config = loadConfig(env);
    const pipeline = new TestPipeline(name, env, config, openStores(config), targetProxy, redisProxy, user);
    if (user) await pipeline.stores.targets.migrate();
    return pipeline;
  }

  /** An environment for a child process (the CLI, a worker): this pipeline's settings and no others. */
  processEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return childEnv({ ...this.env, ...extra });
  }

  get client() {
    return getStack().client;
  }

  /** Starts a worker on this pipeline's task queue; with `metrics`, it counts into the process's registry. */
  /**
   * A worker on this pipeline's task queue. With a `dataConverter` of its own (other codec keys than the
   * pipeline's, say) it loads the workflow bundle built with the code for that converter instead of the
   * run's shared one.
   */
  async startWorker(options: { metrics?: boolean; dataConverter?: DataConverter } = {}): Promise<Worker> {
    const stack = getStack();
    const worker = await createSyncWorker({
      connection: stack.nativeConnection,
      namespace: stack.namespace,
      taskQueue: this.config.taskQueue,
      stores: this.stores,
      settings: activitySettings(this.config),
      ...(options.dataConverter ? { dataConverter: options.dataConverter } : { workflowBundle: stack.workflowBundle }),
      ...(options.metrics ? { metrics: pipelineMetrics() } : {}),
      options: { shutdownGraceTime: '2 seconds' },
    });
    this.workers.push({ worker, run: worker.run() });
    return worker;
  }

  async stopWorkers(): Promise<void> {
    for (const { worker } of this.workers) if (worker.getState() === 'RUNNING') worker.shutdown();
    await Promise.all(this.workers.map((w) => w.run));
    this.workers.length = 0;
  }

  /** Starts a dispatcher loop over this pipeline's outbox (many may run at once). */
  startDispatcher(overrides: Partial<ReturnType<typeof dispatcherSettings>> = {}, logger: DispatcherLogger = quietLogger): Dispatcher {
    const dispatcher = this.createDispatcher(overrides, this.client, logger);
    dispatcher.start();
    return dispatcher;
  }

  /**
   * A dispatcher whose passes the test drives itself (dispatchOnce, redriveOnce, reconcileOnce,
   * publishOnce). Its publisher appends to this pipeline's streams, through the Redis proxy if there is one.
   */
  createDispatcher(overrides: Partial<ReturnType<typeof dispatcherSettings>> = {}, client: Client = this.client, logger: DispatcherLogger = quietLogger): Dispatcher {
    const dispatcher = new Dispatcher(this.stores.outbox, client, { ...dispatcherSettings(this.config), ...overrides }, logger, null, streamsTarget(this.config, this.stores.cache));
    this.dispatchers.push(dispatcher);
    return dispatcher;
  }

  /**
   * Runs publisher passes (as a running dispatcher does on its own) until one appends nothing and no
   * transition waits behind the streams' cursor; `publisher` by default is a dispatcher of its own.
   */
  async catchUpStreams(publisher: Dispatcher = this.createDispatcher()): Promise<void> {
    await waitFor('the streams to catch up', async () => {
      const pass = await publisher.publishOnce();
      if (pass.busy || pass.appended > 0) return undefined;
      return (await readStreamCursor(this.stores.outbox)).waiting === 0 ? true : undefined;
    });
  }

  async stopDispatchers(): Promise<void> {
    await Promise.all(this.dispatchers.map((d) => d.stop()));
    this.dispatchers.length = 0;
  }

  /** Waits until every message is in one of `statuses`; fails with their states if it takes too long. */
  async waitForStatus(ids: number[], statuses: string[], timeoutMs = 30_000): Promise<OutboxMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const messages = await readMessages(this.stores.outbox, ids);
      if (messages.length === ids.length && messages.every((m) => statuses.includes(m.status))) return messages;
      if (Date.now() > deadline) {
        const states = messages.map((m) => `${m.id}:${m.status}${m.lastError ? ` (${m.lastError})` : ''}`).join(', ');
        throw new Error(`messages did not reach ${statuses.join('|')} within ${timeoutMs} ms: ${states}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The entries of the success or failure stream, each as an object of its fields. */
  async streamEntries(stream: 'succeeded' | 'failed'): Promise<Record<string, string>[]> {
    const entries = await this.stores.redis.xrange(this.stores.cache.streamKey(stream), '-', '+');
    return entries.map(([, flat]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      return fields;
    });
  }

  /** Runs SQL on the target database directly (not through the proxy). */
  async targetAdmin<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<T>> {
    const client = new pg.Client(pgSettings(databaseUrl(getStack().postgresUrl, `${this.name}_target`)));
    await client.connect();
    try {
      return await client.query<T>(sql, params);
    } finally {
      await client.end();
    }
  }

  /** Stops everything the pipeline started; drops its databases and Redis keys unless a test of it failed. */
  async close(): Promise<void> {
    const keep = tests.current?.state === 'failed' || tests.failed > this.failedBefore;
    await this.stopDispatchers();
    await this.stopWorkers();
    if (!keep) {
      const keys = await this.stores.redis.keys(`${this.config.redisPrefix}*`).catch(() => []);
      if (keys.length > 0) await this.stores.redis.del(...keys).catch(() => undefined);
    }
    await this.stores.close();
    await this.targetProxy?.close();
    await this.redisProxy?.close();
    if (keep) {
      const user = this.user ? `, ${this.name}_user and MariaDB's ${this.name}` : '';
      console.error(`    kept for inspection: databases ${this.name}_outbox and ${this.name}_target${user}, Redis prefix ${this.config.redisPrefix}`);
      return;
    }
    await this.user?.drop();
    const stack = getStack();
    await dropDatabase(stack.postgresUrl, `${this.name}_outbox`);
    await dropDatabase(stack.postgresUrl, `${this.name}_target`);
  }
}

/** Polls `check` until it returns a value other than undefined. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
