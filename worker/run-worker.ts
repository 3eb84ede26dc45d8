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
