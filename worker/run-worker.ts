/** The long-running processes: short entry points that parse config, build dependencies, run, and shut down. */
import type { Server } from 'node:http';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { DefaultLogger, NativeConnection, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';
import { dataConverterFor } from '../temporal/data-converter';
import type { Config } from '../config/config';
import { connectTemporal, openStores, temporalConnectionOptions } from '../stores/stores';
import { Dispatcher, type DispatcherLogger, type DispatcherSettings } from '../dispatcher/dispatcher';
import { createLogger, type Logger } from '../observability/logging';
import { collectProcessMetrics, pipelineMetrics, registerOutboxGauges } from '../observability/metrics';
import { serveMetrics } from '../observability/metrics-server';
import { activitySettings, createSyncWorker } from './worker';
import { untilSignal } from '../servers/until-signal';

export { untilSignal };

export function dispatcherSettings(config: Config): DispatcherSettings {
  return {
    taskQueue: config.taskQueue,
    workflowIdPrefix: config.workflowIdPrefix,
    claimBatchSize: config.claimBatchSize,
    pollIntervalMs: config.pollIntervalMs,
    leaseMs: config.leaseMs,
    maxExecutions: config.maxExecutions,
    maxInFlight: config.maxInFlight,
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

const SDK_LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Routes the Temporal SDK's logs into `logger`, once per process and before any connection: the
 * activities' and workflows' own lines (with workflowId, runId, attempt from the SDK, messageId from
 * worker/telemetry.ts) at the configured level, the SDK's internals at warning and above. With
 * `sdkMetricsAddress` the SDK serves its own Prometheus metrics there (the worker adds them to /metrics).
 */
export function installRuntime(logger: Logger, sdkMetricsAddress?: string): void {
  const chattyBelowWarn = (entry: LogEntry) =>
    (entry.level === 'INFO' || entry.level === 'DEBUG' || entry.level === 'TRACE') &&
    entry.meta?.sdkComponent !== 'activity' &&
    entry.meta?.sdkComponent !== 'workflow';
  const forward = (entry: LogEntry) => {
    if (chattyBelowWarn(entry) && !logger.isLevelEnabled('debug')) return;
    // One name for the run id in every line (activities call it workflowRunId); task tokens are noise.
    const meta: Record<string, unknown> = { ...entry.meta };
    if (meta.workflowRunId !== undefined) meta.runId = meta.workflowRunId;
    delete meta.workflowRunId;
    delete meta.taskToken;
    logger[SDK_LEVELS[entry.level]](meta, entry.message);
  };
  Runtime.install({
    logger: new DefaultLogger(logger.isLevelEnabled('debug') ? 'DEBUG' : 'INFO', forward),
    telemetryOptions: {
      logging: { forward: {}, filter: { core: 'WARN', other: 'ERROR' } },
      ...(sdkMetricsAddress ? { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } } : {}),
    },
  });
}

/** Serves /metrics when OUTBOX_SYNC_METRICS_ADDRESS is set; returns the server (or null). */
export async function startMetrics(config: Config, logger: Logger, sdkMetricsUrl?: string): Promise<Server | null> {
  if (!config.metricsAddress) return null;
  const [host, port] = splitAddress(config.metricsAddress);
  const server = await serveMetrics({ host, port }, sdkMetricsUrl);
  logger.info({ address: config.metricsAddress }, 'metrics at /metrics');
  return server;
}

function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}

/** A free loopback port, e.g. for the SDK's metrics exporter, which the worker's /metrics reads from. */
export async function freeLoopbackPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Runs a worker until SIGINT or SIGTERM; running activities get the grace time to finish. */
export async function runWorker(config: Config): Promise<void> {
  const logger = createLogger(config, 'worker');
  const sdkPort = config.metricsAddress ? await freeLoopbackPort() : 0;
  installRuntime(logger, sdkPort ? `127.0.0.1:${sdkPort}` : undefined);
  collectProcessMetrics();
  const metricsServer = await startMetrics(config, logger, sdkPort ? `http://127.0.0.1:${sdkPort}/metrics` : undefined);
  const stores = openStores(config);
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  try {
    const worker = await createSyncWorker({
      connection,
      namespace: config.temporalNamespace,
      taskQueue: config.taskQueue,
      stores,
      settings: activitySettings(config),
      metrics: pipelineMetrics(),
      dataConverter: dataConverterFor(config),
    });
    logger.info({ taskQueue: config.taskQueue, temporal: config.temporalAddress }, 'worker running');
    await worker.run();
    logger.info('worker stopped');
  } finally {
    metricsServer?.close();
    await connection.close();
    await stores.close();
  }
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
