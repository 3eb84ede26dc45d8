/** The dispatcher process: parse config, build the stores and the client, run until a signal, shut down. */
import type { Config } from '../config/config';
import { createLogger, type Logger } from '../observability/logging';
import { collectProcessMetrics, pipelineMetrics, registerOutboxGauges } from '../observability/metrics';
import { startMetrics } from '../observability/metrics-server';
import { untilSignal } from '../servers/until-signal';
import { openStores } from '../stores/stores';
import { connectTemporal } from '../temporal/connection';
import { Dispatcher, type DispatcherLogger, type DispatcherSettings } from './dispatcher';

export function dispatcherSettings(config: Config): DispatcherSettings {
  return {
    taskQueue: config.taskQueue,
    workflowIdPrefix: config.workflowIdPrefix,
    claimBatchSize: config.claimBatchSize,
    pollIntervalMs: config.pollIntervalMs,
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

/** Runs a dispatcher until SIGINT or SIGTERM; claimed messages are started before it exits. */
export async function runDispatcher(config: Config): Promise<void> {
  const logger = createLogger(config, 'dispatcher');
  collectProcessMetrics();
  const stores = openStores(config, 4);
  registerOutboxGauges(stores.outbox);
  const metricsServer = await startMetrics(config, logger);
  const { connection, client } = await connectTemporal(config);
  const dispatcher = new Dispatcher(stores.outbox, client, dispatcherSettings(config), dispatcherLogger(logger), pipelineMetrics());
  try {
    dispatcher.start();
    logger.info({ taskQueue: config.taskQueue, temporal: config.temporalAddress }, 'dispatcher running');
    await untilSignal();
    await dispatcher.stop();
    logger.info('dispatcher stopped');
  } finally {
    metricsServer?.close();
    await connection.close();
    await stores.close();
  }
}
