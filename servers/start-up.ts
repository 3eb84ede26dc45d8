/**
 * Start in any order: a worker or dispatcher waits for what it needs (the outbox database, Redis,
 * Temporal and its namespace), one plain log line per try naming the setting and the address, with a
 * doubling backoff, and proceeds when it answers. SIGINT or SIGTERM ends the wait at once. What will not
 * mend by waiting (a password or role the database refuses, a permission Temporal denies) ends the start
 * with one line instead.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { isGrpcServiceError, type Client, type Connection } from '@temporalio/client';
import Redis from 'ioredis';
import pg from 'pg';
import type { Config } from '../config/config';
import type { Logger } from '../observability/logging';
import { waitingGauge } from '../observability/metrics';
import { pgSettings } from '../stores/postgres/connect';
import { PgErrorCode, sqlState } from '../stores/postgres/errors';
import { redisTls } from '../stores/stores';
import { describeAddress } from '../stores/target/mapping';
import { isUnreachable, plainReason } from '../stores/unreachable';
import { connectTemporal, temporalConnectionOptions } from '../temporal/connection';
import { temporalReason } from '../temporal/unreachable';

export { StartStopped, stopOnSignal } from './until-signal';

/** Something a process needs before it can work, and how to reach it. */
export interface Dependency<T> {
  /** In an operator's words: "the outbox database". */
  what: string;
  /** The setting that says where it is. */
  setting: string;
  /** Where it is, without secrets. */
  address: string;
  /**
   * Resolves when it answers; throws NotReady to be tried again, anything else to end the start. A try
   * still going when `stop` aborts is left to finish on its own and must then let go of what it opened.
   */
  reach(stop: AbortSignal): Promise<T>;
}

/** The dependency does not answer, or is not ready to be used yet: the reason, in plain words. */
export class NotReady extends Error {
  override name = 'NotReady';
}

export interface Backoff {
  firstMs: number;
  maxMs: number;
}

export const START_BACKOFF: Backoff = { firstMs: 500, maxMs: 15_000 };

/** Tries `dependency` until it answers, logging why not and when the next try is; throws StartStopped on a stop request. */
export async function waitFor<T>(dependency: Dependency<T>, logger: Logger, stop: AbortSignal, backoff: Backoff = START_BACKOFF): Promise<T> {
  const where = `${dependency.what} at ${dependency.address} (${dependency.setting})`;
  const waiting = waitingGauge().labels({ dependency: dependency.setting });
  for (let attempt = 0; ; attempt++) {
    stop.throwIfAborted();
    try {
      const reached = await untilAborted(dependency.reach(stop), stop);
      waiting.set(0);
      if (attempt > 0) logger.info({ setting: dependency.setting, address: dependency.address }, `${where} answers`);
      return reached;
    } catch (err) {
      stop.throwIfAborted();
      if (!(err instanceof NotReady)) throw err;
      waiting.set(1);
      const delayMs = Math.min(backoff.firstMs * 2 ** attempt, backoff.maxMs);
      logger.warn({ setting: dependency.setting, address: dependency.address }, `waiting for ${where}: ${err.message}; trying again in ${formatSeconds(delayMs)}`);
      await sleep(delayMs, undefined, { signal: stop }).catch(() => stop.throwIfAborted());
    }
  }
}

/** `work`, or the stop's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, stop: AbortSignal): Promise<T> {
  work.catch(() => undefined); // once aborted, nobody waits for it
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(stop.reason);
    stop.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => stop.removeEventListener('abort', onAbort));
  });
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** The outbox table answers a query (a database that is down, missing or not migrated yet is waited for). */
export function outboxDatabase(config: Config): Dependency<void> {
  const address = describeAddress(config.outboxDatabaseUrl);
  return {
    what: 'the outbox database',
    setting: 'OUTBOX_DATABASE_URL',
    address,
    async reach() {
      const client = new pg.Client(pgSettings(config.outboxDatabaseUrl, { connectionTimeoutMillis: 5_000 }));
      client.on('error', () => undefined); // a connection the server drops during the check; the check's own call reports it
      try {
        await client.connect();
        await client.query('SELECT 1 FROM outbox_messages LIMIT 0');
      } catch (err) {
        const code = sqlState(err);
        if (code === PgErrorCode.invalidCatalogName) throw new NotReady('the database does not exist yet (run: outbox-sync migrate)');
        if (code === PgErrorCode.undefinedTable) throw new NotReady('outbox_messages does not exist yet (run: outbox-sync migrate)');
        if (isUnreachable(err)) throw new NotReady(plainReason(err));
        throw new Error(`OUTBOX_DATABASE_URL (${address}): ${plainReason(err)}`, { cause: err });
      } finally {
        await client.end().catch(() => undefined);
      }
    },
  };
}

/** Redis answers PING, on a connection of the check's own so that the reason is the socket's. */
export function redisServer(config: Config): Dependency<void> {
  const address = describeAddress(config.redisUrl);
  return {
    what: 'Redis',
    setting: 'REDIS_URL',
    address,
    async reach() {
      const probe = new Redis(config.redisUrl, { ...redisTls(config), connectTimeout: 3_000, lazyConnect: true, enableOfflineQueue: false, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      // connect() rejects with only "Connection is closed."; the socket's own error came just before.
      let socketError: unknown;
      probe.on('error', (err) => (socketError = err));
      try {
        await probe.connect();
        await probe.ping();
      } catch (err) {
        const said = socketError ?? err;
        if (isUnreachable(said) || /^LOADING/.test((said as Error).message)) throw new NotReady(plainReason(said));
        throw new Error(`REDIS_URL (${address}): ${plainReason(said)}`, { cause: err });
      } finally {
        probe.disconnect();
      }
    },
  };
}

export interface TemporalClient {
  connection: Connection;
  client: Client;
}

/**
 * Temporal answers, and the namespace exists: a client on it, with the encrypting data converter when keys
 * are set. The connection is the client library's, not the worker's native one: the native runtime, once
 * a connection of its fails, shuts down and forgets how it was installed (logs, metrics), so the worker
 * waits with this one, then installs the runtime and connects.
 */
export function temporalServer(config: Config): Dependency<TemporalClient> {
  const { address } = temporalConnectionOptions(config);
  return {
    what: 'Temporal',
    setting: 'TEMPORAL_ADDRESS',
    address,
    async reach(stop) {
      let reached: TemporalClient;
      try {
        reached = await connectTemporal(config, 3_000);
      } catch (err) {
        throw new NotReady(await temporalReason(err, address));
      }
      const { connection } = reached;
      try {
        stop.throwIfAborted();
        await connection.workflowService.describeNamespace({ namespace: config.temporalNamespace });
        return reached;
      } catch (err) {
        await connection.close().catch(() => undefined);
        const code = isGrpcServiceError(err) ? err.code : undefined;
        if (code === status.NOT_FOUND) throw new NotReady(`namespace "${config.temporalNamespace}" (TEMPORAL_NAMESPACE) does not exist yet (run: outbox-sync migrate --create-namespace, or have the cluster's admin create it)`);
        if (code === status.UNAVAILABLE) throw new NotReady(await temporalReason(err, address));
        throw new Error(`TEMPORAL_NAMESPACE "${config.temporalNamespace}" at ${address}: ${plainReason(err)}`, { cause: err });
      }
    },
  };
}
