/** Opens (and closes) the stores that the processes share: both databases and Redis. */
import { readFileSync } from 'node:fs';
import Redis, { type RedisOptions } from 'ioredis';
import pg from 'pg';
import { Cache } from './cache';
import type { Config } from '../config/config';
import { pgSettings } from './postgres/connect';
import { Targets } from './target/targets';

export interface Stores {
  outbox: pg.Pool;
  /** synced_records, the default target. */
  target: pg.Pool;
  /** Every target: the mapped tables (a pool per database) and synced_records. */
  targets: Targets;
  redis: Redis;
  cache: Cache;
  close(): Promise<void>;
}

/** PostgreSQL TLS comes from each URL (sslmode, sslrootcert, sslcert, sslkey), as libpq users expect. */
export function openStores(config: Config, poolSize?: number): Stores {
  const outbox = new pg.Pool(pgSettings(config.outboxDatabaseUrl, { max: poolSize ?? 10 }));
  const target = new pg.Pool(pgSettings(config.targetDatabaseUrl, { max: poolSize ?? 10 }));
  // A pool error is a connection the server dropped while idle; the pool replaces it on next use.
  outbox.on('error', () => undefined);
  target.on('error', () => undefined);
  const redis = openRedis(config);
  const cache = new Cache(redis, config.redisPrefix, config.cacheTtlSeconds * 1000);
  const targets = new Targets(target, config.targets, poolSize ?? config.targetPoolSize);
  return {
    outbox,
    target,
    targets,
    redis,
    cache,
    async close() {
      await Promise.allSettled([outbox.end(), target.end(), targets.close(), closeRedis(redis)]);
    },
  };
}

/**
 * A Redis client whose commands wait for a reconnect, but not for long: past two reconnects or two seconds
 * they fail, and the activity's retry policy takes over (or the persist step reads the outbox copy
 * instead; the streams' publisher keeps its cursor and tries again).
 */
export function openRedis(config: Config): Redis {
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2, commandTimeout: 2_000, connectTimeout: 2_000, ...redisTls(config) });
  redis.on('error', () => undefined); // said by whoever's command it fails
  return redis;
}

/** quit() waits for replies; a client that never connected is disconnected instead (no reconnect timer left). */
export async function closeRedis(redis: Redis): Promise<void> {
  await redis.quit().catch(() => redis.disconnect());
}

/** A rediss:// URL turns TLS on (ioredis does that); the files add a private CA and a client certificate. */
export function redisTls(config: Config): Pick<RedisOptions, 'tls'> {
  const files = { ca: config.redisTlsCaFile, cert: config.redisTlsCertFile, key: config.redisTlsKeyFile };
  if (!files.ca && !files.cert) return {};
  return {
    tls: {
      ...(files.ca ? { ca: readFileSync(files.ca) } : {}),
      ...(files.cert ? { cert: readFileSync(files.cert), key: readFileSync(files.key) } : {}),
    },
  };
}
