/** The worker process: parse config, build the stores and the connection, run until a signal, shut down. */
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../config/config';
import { createLogger } from '../observability/logging';
import { collectProcessMetrics, pipelineMetrics } from '../observability/metrics';
import { freeLoopbackPort, startMetrics } from '../observability/metrics-server';
import { openStores } from '../stores/stores';
import { dataConverterFor } from '../temporal/data-converter';
import { temporalConnectionOptions } from '../temporal/connection';
import { installRuntime } from './runtime';
import { activitySettings, createSyncWorker } from './worker';

/** Runs a worker until SIGINT or SIGTERM; running activities get the grace time to finish. */
export async function runWorker(config: Config): Promise<void> {
  const logger = createLogger(config, 'worker');
  const stores = openStores(config);
  // A mapping that does not fit its tables stops the worker (exit 2); a target database that is down only
  // holds up its own entities, whose writes retry until it answers.
  try {
    const report = await stores.targets.requireReady({ unreachableIsFine: true });
    for (const database of report.databases) if (database.problem) logger.warn({ database: database.name }, database.problem);
  } catch (err) {
    await stores.close();
    throw err;
  }
  const sdkPort = config.metricsAddress ? await freeLoopbackPort() : 0;
  installRuntime(logger, sdkPort ? `127.0.0.1:${sdkPort}` : undefined);
  collectProcessMetrics();
  const metricsServer = await startMetrics(config, logger, sdkPort ? `http://127.0.0.1:${sdkPort}/metrics` : undefined);
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
