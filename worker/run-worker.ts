/** The worker process: parse config, wait for what it needs, run until a signal, shut down. */
import { NativeConnection } from '@temporalio/worker';
import type { Config } from '../config/config';
import { createLogger } from '../observability/logging';
import { collectProcessMetrics, pipelineMetrics } from '../observability/metrics';
import { freeLoopbackPort, startMetrics } from '../observability/metrics-server';
import { outboxDatabase, redisServer, stopOnSignal, temporalServer, waitFor } from '../servers/start-up';
import { openStores } from '../stores/stores';
import { temporalConnectionOptions } from '../temporal/connection';
import { dataConverterFor } from '../temporal/data-converter';
import { temporalUnreachable } from '../temporal/unreachable';
import { installRuntime } from './runtime';
import { activitySettings, createSyncWorker, prebuiltWorkflowBundle } from './worker';

/**
 * Runs a worker until SIGINT or SIGTERM; running activities get the grace time to finish. It starts in
 * any order: the outbox database, Redis and Temporal are waited for (servers/start-up.ts).
 */
export async function runWorker(config: Config): Promise<void> {
  const logger = createLogger(config, 'worker');
  const stop = stopOnSignal();
  collectProcessMetrics();
  const sdkPort = config.metricsAddress ? await freeLoopbackPort() : 0;
  const metricsServer = await startMetrics(config, logger, sdkPort ? `http://127.0.0.1:${sdkPort}/metrics` : undefined);
  let stores: ReturnType<typeof openStores> | undefined;
  let connection: NativeConnection | undefined;
  try {
    await waitFor(outboxDatabase(config), logger, stop.signal);
    await waitFor(redisServer(config), logger, stop.signal);
    stores = openStores(config);
    // A mapping that does not fit its tables stops the worker (exit 2); a target database that is down only
    // holds up its own entities, whose writes retry until it answers.
    const report = await stores.targets.requireReady({ unreachableIsFine: true });
    for (const database of report.databases) if (database.problem) logger.warn({ database: database.name }, database.problem);
    const reached = await waitFor(temporalServer(config), logger, stop.signal);
    await reached.connection.close();
    // Only now: a runtime installed with no connection of its own would keep a stopped process alive.
    installRuntime(logger, sdkPort ? `127.0.0.1:${sdkPort}` : undefined);
    connection = await NativeConnection.connect(temporalConnectionOptions(config)).catch(async (err: unknown) => {
      throw await temporalUnreachable(err, config.temporalAddress);
    });
    // A signal that came while the runtime was not installed yet reached only our handler.
    stop.signal.throwIfAborted();
    const dataConverter = dataConverterFor(config);
    const prebuilt = prebuiltWorkflowBundle(dataConverter);
    if (!prebuilt) logger.warn('no prebuilt workflow bundle matches the compiled workflows (npm run build writes them): bundling them now, for a slower start and more memory');
    const worker = await createSyncWorker({
      connection,
      namespace: config.temporalNamespace,
      taskQueue: config.taskQueue,
      stores,
      settings: activitySettings(config),
      metrics: pipelineMetrics(),
      dataConverter,
      workflowBundle: prebuilt ? { codePath: prebuilt } : undefined,
    });
    logger.info({ taskQueue: config.taskQueue, temporal: config.temporalAddress, workflowBundle: prebuilt ?? 'bundled at start' }, 'worker running');
    await worker.run();
    logger.info('worker stopped');
  } finally {
    metricsServer?.close();
    await connection?.close();
    await stores?.close();
  }
}
