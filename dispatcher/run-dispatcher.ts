/** The dispatcher process: parse config, build the stores and the client, run until a signal, shut down. */
import pg from 'pg';
import type { Config } from '../config/config';
import { createLogger, type Logger } from '../observability/logging';
import { collectProcessMetrics, pipelineMetrics, registerOutboxGauges } from '../observability/metrics';
import { startMetrics } from '../observability/metrics-server';
import { outboxDatabase, stopOnSignal, temporalServer, waitFor, type TemporalClient } from '../servers/start-up';
import type Redis from 'ioredis';
import { Cache } from '../stores/cache';
import { pgSettings } from '../stores/postgres/connect';
import { closeRedis, openRedis } from '../stores/stores';
import { Dispatcher, type DispatcherLogger, type DispatcherSettings } from './dispatcher';
import { streamsTarget } from './publish';

export function dispatcherSettings(config: Config): DispatcherSettings {
  return {
    taskQueue: config.taskQueue,
    workflowIdPrefix: config.workflowIdPrefix,
    claimBatchSize: config.claimBatchSize,
    pollIntervalMs: config.pollIntervalMs,
    publishIntervalMs: config.publishIntervalMs,
    slaSeconds: config.slaSeconds,
    leaseMs: config.leaseMs,
    maxExecutions: config.maxExecutions,
    maxInFlight: config.maxInFlight,
    targets: config.targets,
    stepRetry: {
      maxAttempts: config.activityMaxAttempts,
      initialIntervalMs: config.activityInitialIntervalMs,
      maxIntervalMs: config.activityMaxIntervalMs,
      timeoutMs: config.activityTimeoutMs,
    },
    // Encrypted payloads would be pointless with the entity and key in plaintext beside them.
    entityKeySearchAttributes: config.codecKeys.length === 0,
  };
}

/** The dispatcher's (message, fields) log calls on a structured logger. */
export function dispatcherLogger(logger: Logger): DispatcherLogger {
  return {
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}

/**
 * Runs a dispatcher until SIGINT or SIGTERM; claimed messages are started before it exits. It starts in
 * any order: the outbox database and Temporal are waited for (servers/start-up.ts). Redis is not: claims
 * go on while it is down, and the publisher says so once and appends what waited when it answers.
 */
export async function runDispatcher(config: Config): Promise<void> {
  const logger = createLogger(config, 'dispatcher');
  const stop = stopOnSignal();
  collectProcessMetrics();
  const metricsServer = await startMetrics(config, logger);
  let outbox: pg.Pool | undefined;
  let temporal: TemporalClient | undefined;
  let redis: Redis | undefined;
  try {
    await waitFor(outboxDatabase(config), logger, stop.signal);
    temporal = await waitFor(temporalServer(config), logger, stop.signal);
    outbox = new pg.Pool(pgSettings(config.outboxDatabaseUrl, { max: 4 }));
    outbox.on('error', () => undefined); // an idle connection the server dropped; the pool replaces it
    registerOutboxGauges(outbox, config);
    redis = openRedis(config);
    const streams = streamsTarget(config, new Cache(redis, config.redisPrefix, config.cacheTtlSeconds * 1000));
    const dispatcher = new Dispatcher(outbox, temporal.client, dispatcherSettings(config), dispatcherLogger(logger), pipelineMetrics(), streams);
    dispatcher.start();
    logger.info({ taskQueue: config.taskQueue, temporal: config.temporalAddress }, 'dispatcher running');
    await stop.requested;
    await dispatcher.stop();
    logger.info('dispatcher stopped');
  } finally {
    metricsServer?.close();
    await temporal?.connection.close();
    await outbox?.end();
    if (redis) await closeRedis(redis);
  }
}
