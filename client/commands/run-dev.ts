/**
 * `outbox-sync dev`: the whole pipeline on this machine in one process. It reuses a Temporal server that
 * already answers at TEMPORAL_ADDRESS, or starts the dev server there (SQLite file, Web UI), then
 * migrates and runs a worker, a dispatcher and the outbox page until Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { dataConverterFor } from '../../temporal/data-converter';
import type { Config } from '../../config/config';
import { openStores } from '../../stores/stores';
import { temporalConnectionOptions } from '../../temporal/connection';
import { Dispatcher } from '../../dispatcher/dispatcher';
import { streamsTarget } from '../../dispatcher/publish';
import { createLogger, type Logger } from '../../observability/logging';
import { collectProcessMetrics, pipelineMetrics, registerOutboxGauges } from '../../observability/metrics';
import { startDevServer, type DevServer } from '../../temporal/dev-server';
import { listExecutions } from '../../temporal/executions';
import { workflowsUrl } from '../../temporal/ui-links';
import { buildUiServer } from '../../servers/ui/ui-server';
import { activitySettings, createSyncWorker } from '../../worker/worker';
import { prepareDemoTargets, runDemo } from './demo';
import { runMigrate } from './migrate';
import { dispatcherLogger, dispatcherSettings } from '../../dispatcher/run-dispatcher';
import { startMetrics } from '../../observability/metrics-server';
import { untilSignal } from '../../servers/until-signal';
import { installRuntime } from '../../worker/runtime';

export async function runDev(settings: Config, options: { demo: boolean; dataDir: string }): Promise<void> {
  let config = settings;
  const logger = createLogger(config, 'dev');
  installRuntime(logger);
  collectProcessMetrics();
  const server = await ensureTemporal(config, resolve(options.dataDir), logger);
  await runMigrate(config, { temporal: true, log: (line) => logger.info(line) });
  if (options.demo) config = await prepareDemoTargets(config, resolve(options.dataDir), (line) => logger.info(line));

  const stores = openStores(config);
  registerOutboxGauges(stores.outbox, config);
  const metricsServer = await startMetrics(config, logger);
  const metrics = pipelineMetrics();
  const nativeConnection = await NativeConnection.connect(temporalConnectionOptions(config));
  // The dispatcher's client shares the worker's connection, so that starts can be eager: the server hands
  // each new execution's first workflow task straight back to this worker, skipping the task queue.
  const dataConverter = dataConverterFor(config);
  const client = new Client({ connection: nativeConnection, namespace: config.temporalNamespace, ...(dataConverter ? { dataConverter } : {}) });
  const worker = await createSyncWorker({
    connection: nativeConnection,
    namespace: config.temporalNamespace,
    taskQueue: config.taskQueue,
    stores,
    settings: activitySettings(config),
    metrics,
    dataConverter: dataConverterFor(config),
  });
  const workerRun = worker.run();
  const streams = streamsTarget(config, stores.cache);
  const dispatcher = new Dispatcher(stores.outbox, client, { ...dispatcherSettings(config), eagerStart: true }, dispatcherLogger(logger), metrics, streams);
  dispatcher.start();
  const stopped = untilSignal();

  const page = outboxPageSettings(config);
  const ui = buildUiServer({ outbox: stores.outbox }, { ...config, ...page.settings }, {
    executions: (workflowId) => listExecutions(client, workflowId),
    logger,
  });
  try {
    await ui.listen({ port: config.uiPort, host: config.uiHost });
    console.log(`Temporal UI: ${workflowsUrl(config)}`);
    console.log(`Outbox page: ${pageAddress(config.uiHost, (ui.server.address() as AddressInfo).port)}${page.fragment}`);
    if (options.demo) await runDemo(stores, config);
    console.log('Worker and dispatcher running. Press Ctrl-C to stop.');
    await Promise.race([stopped, workerRun]);
  } finally {
    await ui.close();
    await dispatcher.stop();
    metricsServer?.close();
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerRun.catch(() => undefined);
    await nativeConnection.close();
    await stores.close();
    await server?.stop();
  }
}

/**
 * The outbox page's tokens: those configured, or else one made for this run, named `dev` and allowed to
 * retry; its link carries it in the fragment, which the page reads once and which never reaches a server log.
 */
function outboxPageSettings(config: Config): { settings: Pick<Config, 'uiTokens' | 'uiOperators'>; fragment: string } {
  if (config.uiTokens.length > 0) return { settings: config, fragment: '' };
  const token = randomBytes(24).toString('base64url');
  return { settings: { uiTokens: [{ name: 'dev', token }], uiOperators: ['dev'] }, fragment: `#token=${token}` };
}

/** Where a browser on this machine reaches a server listening on `host`. */
function pageAddress(host: string, port: number): string {
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${port}/`;
}

/** Starts the dev server unless something already answers at TEMPORAL_ADDRESS. */
async function ensureTemporal(config: Config, dataDir: string, logger: Logger): Promise<DevServer | null> {
  try {
    const probe = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 1_000 });
    await probe.workflowService.getSystemInfo({});
    await probe.close();
    logger.info({ address: config.temporalAddress }, 'using the Temporal server already running');
    return null;
  } catch {
    // nothing there: start one
  }
  const [ip, port] = config.temporalAddress.split(':') as [string, string];
  const uiPort = Number(new URL(config.temporalUiUrl).port || 8233);
  logger.info({ address: config.temporalAddress, dbFile: join(dataDir, 'temporal.sqlite') }, 'starting the Temporal dev server');
  return startDevServer({
    ip,
    port: Number(port),
    uiPort,
    namespace: config.temporalNamespace,
    dbFile: join(dataDir, 'temporal.sqlite'),
    logFile: join(dataDir, 'temporal.log'),
  });
}
