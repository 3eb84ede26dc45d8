/**
 * The engine's floor, measured in every bench run: what one durable workflow per message costs when the
 * workflow does nothing of ours. Each variant runs in a process of its own, on the bench's Temporal server
 * and settings, started the way the dispatcher starts (the same three search attributes, a workflow id per
 * message), with the worker's slot settings:
 *
 *   empty          a workflow with no steps
 *   two local      two local activities that do nothing (the shape of the pipeline's stage and persist)
 *
 * each non-eager (a client on its own connection, as the dispatcher process has) and eager (a client on the
 * worker's connection, as `dev` has). The pipeline's drain is then held against its own mode's floor.
 *
 * Completions are counted by a sink the workflow calls as it ends, not by asking the server, so measuring
 * adds no load to the server it measures.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker, type InjectedSinks } from '@temporalio/worker';
import { loadConfig } from '../config/config';
import { temporalConnectionOptions } from '../temporal/connection';
import { searchAttributesFor } from '../temporal/search-attributes';
import { WORKER_SLOTS } from '../worker/worker';
import { childEnv, spawnProcess } from '../test/support/processes';
import { sampleProcess } from '../test/support/procstat';
import type { FloorSinks } from './floor-workflows';

export type FloorWorkflow = 'floorEmpty' | 'floorTwoLocalSteps';

export interface FloorVariant {
  workflow: FloorWorkflow;
  eager: boolean;
}

export const FLOOR_VARIANTS: FloorVariant[] = [
  { workflow: 'floorEmpty', eager: false },
  { workflow: 'floorTwoLocalSteps', eager: false },
  { workflow: 'floorEmpty', eager: true },
  { workflow: 'floorTwoLocalSteps', eager: true },
];

interface FloorProcessOptions extends FloorVariant {
  /** The floor workflows' bundle, made once for all variants. */
  bundlePath: string;
  workflows: number;
  inFlight: number;
  taskQueue: string;
  workflowIdPrefix: string;
}

/** What the floor process reports of its measured phase. */
interface FloorProcessResult {
  seconds: number;
  cpuSeconds: number;
}

export interface FloorRun extends FloorVariant {
  workflows: number;
  seconds: number;
  rate: number;
  /** CPU milliseconds per workflow: the Temporal server's (null where it is not measured), and the floor process's (worker and starter). */
  temporalCpuMs: number | null;
  processCpuMs: number;
}

export interface Floor {
  workflows: number;
  inFlight: number;
  runs: FloorRun[];
}

const WARM_UP = 50;
const MEASURING = 'floor: measuring';
const RESULT = /^floor: result (\{.*\})$/m;

/**
 * Runs every variant, one after the other, against the Temporal server `env` names; `temporalPids` are its
 * processes, whose CPU is measured (none: not measured).
 */
export async function measureFloor(options: {
  env: Record<string, string>;
  workflows: number;
  inFlight: number;
  taskQueue: string;
  temporalPids: number[];
  /** A folder for the bundle. */
  dataDir: string;
  progress: (line: string) => void;
}): Promise<Floor> {
  const bundlePath = join(options.dataDir, 'floor-workflows.js');
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('./floor-workflows'), logger: new DefaultLogger('WARN') });
  writeFileSync(bundlePath, code);
  const runs: FloorRun[] = [];
  for (const [i, variant] of FLOOR_VARIANTS.entries()) {
    const label = describeVariant(variant);
    options.progress(`floor: ${label}, ${options.workflows} workflows, ${options.inFlight} in flight`);
    const processOptions: FloorProcessOptions = {
      ...variant,
      bundlePath,
      workflows: options.workflows,
      inFlight: options.inFlight,
      taskQueue: `${options.taskQueue}-floor-${i}`,
      workflowIdPrefix: `${options.taskQueue}-floor-${i}-`,
    };
    const child = spawnProcess({
      command: process.execPath,
      args: [__filename, JSON.stringify(processOptions)],
      env: childEnv(options.env),
      keepOutput: 20_000,
      name: `floor (${label})`,
    });
    try {
      await child.waitFor(MEASURING, 120_000);
      const before = serverCpuSeconds(options.temporalPids);
      await child.waitFor(RESULT, 600_000);
      const after = serverCpuSeconds(options.temporalPids);
      const result = JSON.parse(RESULT.exec(child.output())![1]!) as FloorProcessResult;
      const exit = await child.exited;
      if (exit.code !== 0) throw new Error(`the floor process (${label}) exited with ${exit.code ?? exit.signal}`);
      const perWorkflowMs = (seconds: number) => Math.round((seconds / options.workflows) * 1000 * 100) / 100;
      const run: FloorRun = {
        ...variant,
        workflows: options.workflows,
        seconds: Math.round(result.seconds * 100) / 100,
        rate: Math.round((options.workflows / result.seconds) * 100) / 100,
        temporalCpuMs: before === null || after === null ? null : perWorkflowMs(after - before),
        processCpuMs: perWorkflowMs(result.cpuSeconds),
      };
      options.progress(`floor: ${label}: ${run.rate} workflows/s`);
      runs.push(run);
    } finally {
      await child.kill();
    }
  }
  return { workflows: options.workflows, inFlight: options.inFlight, runs };
}

export function describeVariant(v: FloorVariant): string {
  return `${v.workflow === 'floorEmpty' ? 'empty workflow' : 'two local activities that do nothing'}, ${v.eager ? 'eager start, one process' : 'non-eager'}`;
}

/** The run a pipeline mode is held against: two local steps, started eagerly when the pipeline's starts are. */
export function floorFor(floor: Floor, eager: boolean): FloorRun | undefined {
  return floor.runs.find((r) => r.workflow === 'floorTwoLocalSteps' && r.eager === eager);
}

/** The CPU seconds of the server's processes together; null when there are none, or one has gone. */
export function serverCpuSeconds(pids: number[]): number | null {
  if (pids.length === 0) return null;
  let total = 0;
  for (const pid of pids) {
    const sample = sampleProcess(pid);
    if (!sample) return null;
    total += sample.cpuSeconds;
  }
  return total;
}

/** The floor process: a worker of the floor workflows and a starter, in one process. */
async function floorProcess(options: FloorProcessOptions): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = loadConfig(process.env);
  const connection = await NativeConnection.connect(temporalConnectionOptions(config));
  const clientConnection = options.eager ? null : await Connection.connect(temporalConnectionOptions(config));
  const client = new Client({ connection: clientConnection ?? connection, namespace: config.temporalNamespace });
  let done = 0;
  let onDone: () => void = () => undefined;
  const sinks: InjectedSinks<FloorSinks> = {
    floor: {
      ended: {
        fn: () => {
          done++;
          onDone();
        },
        callDuringReplay: false,
      },
    },
  };
  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: options.taskQueue,
    workflowBundle: { codePath: options.bundlePath },
    activities: { nothing: async () => undefined },
    sinks,
    maxConcurrentActivityTaskExecutions: WORKER_SLOTS,
    maxConcurrentLocalActivityExecutions: WORKER_SLOTS,
  });

  /** Starts `count` workflows, numbered from `first`, at most `inFlight` open at once; resolves when all have ended. */
  const run = async (first: number, count: number) => {
    const target = done + count;
    let started = 0;
    await new Promise<void>((resolve, reject) => {
      const startMore = () => {
        while (started < count && started - (done - (target - count)) < options.inFlight) {
          const id = first + started++;
          client.workflow
            .start(options.workflow, {
              taskQueue: options.taskQueue,
              workflowId: `${options.workflowIdPrefix}${id}`,
              workflowIdConflictPolicy: 'USE_EXISTING',
              workflowIdReusePolicy: 'ALLOW_DUPLICATE',
              typedSearchAttributes: searchAttributesFor({ id, entity: 'floor', key: `k${id}` }),
              ...(options.eager ? { requestEagerStart: true } : {}),
            })
            .catch(reject);
        }
      };
      onDone = () => {
        if (done >= target) resolve();
        else startMore();
      };
      startMore();
    });
  };

  await worker.runUntil(async () => {
    await run(0, Math.min(WARM_UP, options.workflows));
    console.log(MEASURING);
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    await run(Math.min(WARM_UP, options.workflows), options.workflows);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const used = process.cpuUsage(cpu);
    const result: FloorProcessResult = { seconds, cpuSeconds: (used.user + used.system) / 1e6 };
    console.log(`floor: result ${JSON.stringify(result)}`);
  });
  await clientConnection?.close();
  await connection.close();
}

if (require.main === module) {
  floorProcess(JSON.parse(process.argv[2]!) as FloorProcessOptions).then(
    () => process.exit(0),
    (err) => {
      console.error(`floor: ${(err as Error).stack ?? err}`);
      process.exit(1);
    },
  );
}
