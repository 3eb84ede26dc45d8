/** The long-running processes: short entry points that parse config, build dependencies, run, and shut down. */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Config } from '../config';
import { connectTemporal, openStores } from '../connections';
import { Dispatcher, type DispatcherSettings } from '../dispatcher';
import { activitySettings, createSyncWorker } from '../worker';
import { processLogger } from './log';

export function dispatcherSettings(config: Config): DispatcherSettings {
  return {
    taskQueue: config.taskQueue,
    workflowIdPrefix: config.workflowIdPrefix,
    claimBatchSize: config.claimBatchSize,
    pollIntervalMs: config.pollIntervalMs,
    leaseMs: config.leaseMs,
    maxExecutions: config.maxExecutions,
    stepRetry: {
      maxAttempts: config.activityMaxAttempts,
      initialIntervalMs: config.activityInitialIntervalMs,
      maxIntervalMs: config.activityMaxIntervalMs,
      timeoutMs: config.activityTimeoutMs,
    },
  };
}

/** The SDK's own log lines at warning level and above; once per process, before any connection. */
export function installRuntime(): void {
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

/** Runs a worker until SIGINT or SIGTERM; running activities get the grace time to finish. */
export async function runWorker(config: Config): Promise<void> {
  installRuntime();
  const stores = openStores(config);
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  try {
    const worker = await createSyncWorker({
      connection,
      namespace: config.temporalNamespace,
      taskQueue: config.taskQueue,
      stores,
      settings: activitySettings(config),
    });
    processLogger.info('worker running', { taskQueue: config.taskQueue, temporal: config.temporalAddress });
    await worker.run();
    processLogger.info('worker stopped');
  } finally {
    await connection.close();
    await stores.close();
  }
}

/** Runs a dispatcher until SIGINT or SIGTERM; claimed messages are started before it exits. */
export async function runDispatcher(config: Config): Promise<void> {
  const stores = openStores(config, 4);
  const { connection, client } = await connectTemporal(config);
  const dispatcher = new Dispatcher(stores.outbox, client, dispatcherSettings(config), processLogger);
  try {
    dispatcher.start();
    processLogger.info('dispatcher running', { taskQueue: config.taskQueue, temporal: config.temporalAddress });
    await untilSignal();
    await dispatcher.stop();
    processLogger.info('dispatcher stopped');
  } finally {
    await connection.close();
    await stores.close();
  }
}

export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}
