/** Opens (and closes) the clients that the processes share: both databases, Redis and Temporal. */
import { Client, Connection } from '@temporalio/client';
import Redis from 'ioredis';
import pg from 'pg';
import { Cache } from '../cache/store';
import { dataConverterFor } from '../codec';
import type { Config } from '../config';
import { pgSettings } from '../database/connect';

export interface Stores {
  outbox: pg.Pool;
  target: pg.Pool;
  redis: Redis;
  cache: Cache;
  close(): Promise<void>;
}

export function openStores(config: Config, poolSize = 10): Stores {
  const outbox = new pg.Pool(pgSettings(config.outboxDatabaseUrl, { max: poolSize }));
  const target = new pg.Pool(pgSettings(config.targetDatabaseUrl, { max: poolSize }));
  // A pool error is a connection the server dropped while idle; the pool replaces it on next use.
  outbox.on('error', () => undefined);
  target.on('error', () => undefined);
  // A command waits for a reconnect, but not for long: past two reconnects or two seconds it fails, and the
  // activity's retry policy takes over (or the persist step reads the outbox copy instead).
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2, commandTimeout: 2_000, connectTimeout: 2_000 });
  redis.on('error', () => undefined);
  const cache = new Cache(redis, config.redisPrefix, config.cacheTtlSeconds * 1000);
  return {
    outbox,
    target,
    redis,
    cache,
    async close() {
      await Promise.allSettled([outbox.end(), target.end(), redis.quit()]);
    },
  };
}

export async function connectTemporal(config: Config): Promise<{ connection: Connection; client: Client }> {
  const connection = await Connection.connect({ address: config.temporalAddress });
  // With OUTBOX_SYNC_CODEC_KEYS set, what the client sends Temporal (workflow inputs) is encrypted.
  const dataConverter = dataConverterFor(config);
  return { connection, client: new Client({ connection, namespace: config.temporalNamespace, ...(dataConverter ? { dataConverter } : {}) }) };
}
