/** Opens (and closes) the clients that the processes share: both databases, Redis and Temporal. */
import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import Redis, { type RedisOptions } from 'ioredis';
import pg from 'pg';
import { Cache } from './cache';
import { dataConverterFor } from '../temporal/data-converter';
import type { Config } from '../config/config';
import { pgSettings } from './postgres/connect';

export interface Stores {
  outbox: pg.Pool;
  target: pg.Pool;
  redis: Redis;
  cache: Cache;
  close(): Promise<void>;
}

/** PostgreSQL TLS comes from each URL (sslmode, sslrootcert, sslcert, sslkey), as libpq users expect. */
export function openStores(config: Config, poolSize = 10): Stores {
  const outbox = new pg.Pool(pgSettings(config.outboxDatabaseUrl, { max: poolSize }));
  const target = new pg.Pool(pgSettings(config.targetDatabaseUrl, { max: poolSize }));
  // A pool error is a connection the server dropped while idle; the pool replaces it on next use.
  outbox.on('error', () => undefined);
  target.on('error', () => undefined);
  // A command waits for a reconnect, but not for long: past two reconnects or two seconds it fails, and the
  // activity's retry policy takes over (or the persist step reads the outbox copy instead).
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2, commandTimeout: 2_000, connectTimeout: 2_000, ...redisTls(config) });
  redis.on('error', () => undefined);
  const cache = new Cache(redis, config.redisPrefix, config.cacheTtlSeconds * 1000);
  return {
    outbox,
    target,
    redis,
    cache,
    async close() {
      // quit() waits for replies; a client that never connected is disconnected instead (no reconnect timer left).
      await Promise.allSettled([outbox.end(), target.end(), redis.quit().catch(() => redis.disconnect())]);
    },
  };
}

/** A rediss:// URL turns TLS on (ioredis does that); the files add a private CA and a client certificate. */
function redisTls(config: Config): Pick<RedisOptions, 'tls'> {
  const files = { ca: config.redisTlsCaFile, cert: config.redisTlsCertFile, key: config.redisTlsKeyFile };
  if (!files.ca && !files.cert) return {};
  return {
    tls: {
      ...(files.ca ? { ca: readFileSync(files.ca) } : {}),
      ...(files.cert ? { cert: readFileSync(files.cert), key: readFileSync(files.key) } : {}),
    },
  };
}

/** Address, TLS (private CA, mTLS client pair, server name) and API key, for the client and the worker alike. */
export function temporalConnectionOptions(config: Config): { address: string; tls?: TLSConfig | boolean; apiKey?: string } {
  const tls: TLSConfig = {
    ...(config.temporalTlsServerName ? { serverNameOverride: config.temporalTlsServerName } : {}),
    ...(config.temporalTlsCaFile ? { serverRootCACertificate: readFileSync(config.temporalTlsCaFile) } : {}),
    ...(config.temporalTlsCertFile ? { clientCertPair: { crt: readFileSync(config.temporalTlsCertFile), key: readFileSync(config.temporalTlsKeyFile) } } : {}),
  };
  const useTls = config.temporalTls || Object.keys(tls).length > 0 || config.temporalApiKey !== '';
  return {
    address: config.temporalAddress,
    ...(useTls ? { tls } : {}),
    ...(config.temporalApiKey ? { apiKey: config.temporalApiKey } : {}),
  };
}

export async function connectTemporal(config: Config, connectTimeoutMs?: number): Promise<{ connection: Connection; client: Client }> {
  const connection = await Connection.connect({
    ...temporalConnectionOptions(config),
    ...(connectTimeoutMs === undefined ? {} : { connectTimeout: connectTimeoutMs }),
  });
  // With OUTBOX_SYNC_CODEC_KEYS set, what the client sends Temporal (workflow inputs) is encrypted.
  const dataConverter = dataConverterFor(config);
  return { connection, client: new Client({ connection, namespace: config.temporalNamespace, ...(dataConverter ? { dataConverter } : {}) }) };
}
