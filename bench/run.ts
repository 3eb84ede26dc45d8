/**
 * `npm run bench`: throughput, latency and cost of the pipeline on this machine, against the real stack
 * (PostgreSQL, Redis, a Temporal dev server of its own), beside a relay without Temporal.
 *
 *   drain     N pending messages over many keys → seconds until all are completed, messages/s
 *   steady    an open-loop producer at 25 %, 50 % and 75 % of the drain rate → enqueue→completed p50/p95/p99
 *   floor     workflows that do nothing of ours (none, or two local activities that do nothing), started as the
 *             dispatcher starts, non-eager and eager, on the same server → workflows/s and CPU (bench/floor.ts);
 *             the drain as a share of its own mode's floor
 *   baseline  the same N messages through a relay without Temporal, same stores and concurrency → messages/s
 *   cost      peak RSS of the worker and the dispatcher; CPU seconds per 1,000 messages, ours and Temporal's
 *
 * With --cluster, the same bench runs twice in one sitting: on its own dev server, then on the production
 * server of scripts/cluster.sh (bench/cluster.ts) over mTLS, without the baseline, and prints them side by side.
 *
 * The worker and the dispatcher run as the CLI's child processes, so each is measured on its own. The run
 * uses databases, a Redis prefix and a Temporal server of its own, and removes them at the end. A run whose
 * messages did not all complete, or whose target does not hold the newest version of every key, is refused:
 * it reports the problems and no figures, and exits 1.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import pg from 'pg';
import { loadConfig } from '../config/config';
import { openStores, type Stores } from '../stores/stores';
import { packageRoot } from '../config/package-root';
import { databaseUrl, dropDatabase, migrateDatabase } from '../stores/postgres/migrate';
import { freeLoopbackPort as freePort } from '../observability/metrics-server';
import type { MessageInput } from '../stores/outbox/validate';
import { enqueueBatch } from '../stores/outbox/enqueue';
import { DEV_SERVER_DYNAMIC_CONFIG, DEV_SERVER_SQLITE_PRAGMAS, findTemporalBinary, startDevServer, type DevServer } from '../temporal/dev-server';
import { WORKER_SLOTS } from '../worker/worker';
import { connectTemporal } from '../temporal/connection';
import { registerSearchAttributes } from '../temporal/search-attributes-register';
import { relayPending } from './baseline';
import { describeVariant, floorFor, measureFloor, type Floor } from './floor';
import { measureDeletes, type Deletes } from './deletes';
import { checkRun } from './check';
import { formatComparison, withCluster } from './cluster';
import { BENCH_TARGETS, makeUserTables, type BenchTarget, type UserTables } from './user-tables';
import { childEnv, spawnCli, type ProcessHandle } from '../test/support/processes';
import { processEnvironment, sampleProcess, type ProcessSample } from '../test/support/procstat';

const PIPELINE_ENTITY = 'bench';
const RELAY_ENTITY = 'bench-relay';
const STEADY_FRACTIONS = [0.25, 0.5, 0.75];
/** A phase that completes no message for this long is stuck: the run stops with an error. */
const STALL_MS = 120_000;

export interface BenchOptions {
  messages: number;
  keys: number;
  steadySeconds: number;
  json: boolean;
  out: string;
  /** A Temporal server already running; otherwise the bench starts a dev server of its own. */
  temporal?: ExistingTemporal;
  /** Run the relay without Temporal after the pipeline. */
  baseline: boolean;
  /** Workflows per floor variant (0: no floor), and how many are open at once. */
  floorWorkflows: number;
  floorInFlight: number;
  /** Worker and dispatcher in one `outbox-sync dev` process (eager workflow start) instead of two processes. */
  sharedProcess: boolean;
  /** Extra arguments for the bench's own dev server (to try a setting before making it the default). */
  serverArgs: string[];
  postgresUrl: string;
  redisUrl: string;
  /** Where the rows go: synced_records, or tables of a user's own in PostgreSQL or MariaDB/MySQL. */
  target: BenchTarget;
  /** The MariaDB/MySQL server for `--target mysql`. */
  mysqlUrl: string;
}

/** A Temporal server the bench does not start. */
export interface ExistingTemporal {
  /** How the worker and the dispatcher reach it: TEMPORAL_ADDRESS, and TEMPORAL_NAMESPACE and TEMPORAL_TLS_* when needed. */
  env: Record<string, string>;
  /** How the result's settings name it. */
  describe: string;
  /** Its processes by service name, whose CPU and memory are measured; without them it is not measured. */
  services?: Record<string, number>;
  /** The processes of its database (PostgreSQL backends), listed afresh at each sample; their CPU is measured. */
  persistence?: () => number[];
}

export interface Cost {
  /** CPU seconds per 1,000 messages, per process (null where the process is not ours to measure). */
  worker: number;
  /** null when the dispatcher runs inside the worker's process (--shared-process). */
  dispatcher: number | null;
  /** The Temporal server's processes together. */
  temporal: number | null;
  /** Each of them, when it runs as several services. */
  temporalServices?: Record<string, number | null>;
  /** The database backends serving Temporal (the cluster's PostgreSQL; the dev server's SQLite is inside its process). */
  temporalPostgres?: number;
  /** Backends that ended during the phase: their CPU in it is not counted. */
  temporalPostgresEnded?: number;
}

interface SteadyResult {
  fraction: number;
  targetRate: number;
  sent: number;
  achievedRate: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** The same latency in two parts, from the status history: enqueue→claimed (the dispatcher) and claimed→completed (Temporal and the worker). */
  stagesMs: { toClaimed: { p50: number; p99: number }; claimedToCompleted: { p50: number; p99: number } };
  cpuPer1000: Cost;
}

export interface BenchResult {
  ok: true;
  startedAt: string;
  machine: { cores: number; cpu: string; memoryGiB: number; loadAverageAtStart: number[]; loadAverageAtEnd: number[] };
  versions: Record<string, string>;
  settings: Record<string, string | number>;
  drain: { messages: number; keys: number; seconds: number; rate: number; cpuPer1000: Cost };
  steady: SteadyResult[];
  baseline: { messages: number; seconds: number; rate: number; concurrency: number; cpuSecondsPer1000: number; ratio: number } | null;
  floor: Floor | null;
  /** The retention deletes of the pipeline's closed runs, asked for after the floor (bench/deletes.ts); why not, when they failed. */
  deletes: Deletes | { failed: string };
  /** The drain rate ÷ the rate of its own mode's floor (two local activities that do nothing, eager when the pipeline's starts are). */
  floorRatio: number | null;
  /** Sampled every 200 ms from the warm-up to the end of the steady phases (Temporal: its processes together). */
  peakRssMiB: { worker: number; dispatcher: number | null; temporal: number | null };
  /** The kernel's high-water mark (VmHWM) over each process's life, start-up included (Temporal: the sum of its processes'). */
  highWaterRssMiB: { worker: number; dispatcher: number | null; temporal: number | null };
}

export async function runBench(options: BenchOptions, progress: (line: string) => void): Promise<BenchResult> {
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg();
  const name = `outbox_sync_bench_${randomBytes(4).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'outbox-sync-bench-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  const children: ProcessHandle[] = [];
  try {
    // Our own databases, Redis prefix, task queue and (unless given one) Temporal server.
    const outboxUrl = databaseUrl(options.postgresUrl, `${name}_outbox`);
    const targetUrl = databaseUrl(options.postgresUrl, `${name}_target`);
    for (const [url, set] of [
      [outboxUrl, 'outbox'],
      [targetUrl, 'target'],
    ] as const) {
      cleanups.push(() => dropDatabase(options.postgresUrl, new URL(url).pathname.slice(1)));
      await migrateDatabase(url, set);
    }
    let userTables: UserTables | null = null;
    if (options.target !== 'synced') {
      userTables = await makeUserTables(options.target, { name, entities: [PIPELINE_ENTITY, RELAY_ENTITY], postgresUrl: options.postgresUrl, mysqlUrl: options.mysqlUrl, dataDir });
      cleanups.push(() => userTables!.drop());
    }
    let server: DevServer | null = null;
    if (!options.temporal) {
      progress('starting a Temporal dev server of its own');
      server = await startDevServer({
        port: await freePort(),
        uiPort: null,
        dbFile: join(dataDir, 'temporal.sqlite'),
        logFile: join(dataDir, 'temporal.log'),
        extraArgs: options.serverArgs,
      });
      cleanups.push(() => server!.stop());
    }
    const env: Record<string, string> = {
      OUTBOX_DATABASE_URL: outboxUrl,
      TARGET_DATABASE_URL: targetUrl,
      REDIS_URL: options.redisUrl,
      OUTBOX_SYNC_REDIS_PREFIX: `${name}:`,
      ...(server ? { TEMPORAL_ADDRESS: server.address } : options.temporal!.env),
      OUTBOX_SYNC_TASK_QUEUE: name,
      OUTBOX_SYNC_WORKFLOW_ID_PREFIX: `${name}-`,
      ...userTables?.env,
    };
    const config = loadConfig(env);
    if (!server) {
      // What `outbox-sync migrate` does on a server that is not a dev server (which registers them at its start).
      const { connection } = await connectTemporal(config);
      await registerSearchAttributes(connection, config.temporalNamespace).finally(() => connection.close());
    }
    const stores = openStores(config);
    cleanups.push(async () => {
      await deleteKeys(stores, config.redisPrefix);
      await stores.close();
    });
    await stores.targets.migrate();

    progress(options.sharedProcess ? 'starting the worker and the dispatcher in one process (outbox-sync dev)' : 'starting the worker and the dispatcher');
    const worker = options.sharedProcess
      ? await startProcess(['dev', '--data-dir', join(dataDir, 'dev')], env, /Worker and dispatcher running/, children)
      : await startProcess(['worker'], env, /worker running/, children);
    const dispatcher = options.sharedProcess ? null : await startProcess(['dispatcher'], env, /dispatcher running/, children);
    const pids: Pids = {
      worker: worker.pid!,
      dispatcher: dispatcher?.pid ?? null,
      temporal: server ? { 'dev server': server.process.pid! } : (options.temporal!.services ?? {}),
      persistence: options.temporal?.persistence ?? null,
    };
    const measuresTemporal = Object.keys(pids.temporal).length > 0;
    // As the launcher (bin/outbox-sync) set it, read from the worker's own environment.
    const mallocArenaMax = processEnvironment(pids.worker, 'MALLOC_ARENA_MAX') ?? 'unset';
    // Resident memory while the pipeline works (the high-water mark also counts start-up, e.g. bundling).
    const rssPeak = { worker: 0, dispatcher: 0, temporal: 0 };
    const rssSampler = setInterval(() => {
      const now = sampleAll({ ...pids, persistence: null });
      rssPeak.worker = Math.max(rssPeak.worker, now.worker?.rssBytes ?? 0);
      rssPeak.dispatcher = Math.max(rssPeak.dispatcher, now.dispatcher?.rssBytes ?? 0);
      rssPeak.temporal = Math.max(rssPeak.temporal, sum(Object.values(now.temporal).map((s) => s?.rssBytes ?? 0)));
    }, 200);
    cleanups.push(async () => clearInterval(rssSampler));
    const messages = new MessageMaker(options.keys);

    // A few messages first, so connections are open and code is warm when the clock starts.
    const warmIds = await enqueueBatch(stores.outbox, messages.next(PIPELINE_ENTITY, 20));
    await waitCompleted(stores.outbox, warmIds[0]!, warmIds[warmIds.length - 1]!, 'the warm-up messages');

    progress(`drain: ${options.messages} pending messages over ${options.keys} keys`);
    const drainCpu = sampleAll(pids);
    const drain = await enqueueAndTime(stores, messages.next(PIPELINE_ENTITY, options.messages), 'the drain');
    const drainCost = costPer1000(drainCpu, sampleAll(pids), options.messages);
    const drainRate = options.messages / drain.seconds;
    progress(`drain: ${drain.seconds.toFixed(1)} s, ${drainRate.toFixed(1)} messages/s`);

    const steady: SteadyResult[] = [];
    for (const fraction of STEADY_FRACTIONS) {
      const rate = drainRate * fraction;
      progress(`steady: ${rate.toFixed(1)} messages/s (${fraction * 100} % of the drain rate) for ${options.steadySeconds} s`);
      const before = sampleAll(pids);
      const sent = await produceOpenLoop(stores, messages, rate, options.steadySeconds * 1000);
      await waitCompleted(stores.outbox, sent.firstId, sent.lastId, 'the steady messages');
      const cost = costPer1000(before, sampleAll(pids), sent.count);
      const { latencyMs, stagesMs } = await latencies(stores.outbox, sent.firstId, sent.lastId);
      steady.push({ fraction, targetRate: round(rate), sent: sent.count, achievedRate: round(sent.count / (options.steadySeconds || 1)), latencyMs, stagesMs, cpuPer1000: cost });
      progress(`steady: p50 ${latencyMs.p50} ms, p95 ${latencyMs.p95} ms, p99 ${latencyMs.p99} ms`);
    }

    const peak = sampleAll(pids);
    clearInterval(rssSampler);
    await worker.stop('SIGTERM');
    await dispatcher?.stop('SIGTERM');

    const temporalPids = Object.values(pids.temporal);
    let floor: Floor | null = null;
    if (options.floorWorkflows > 0) {
      floor = await measureFloor({
        env,
        workflows: options.floorWorkflows,
        inFlight: options.floorInFlight,
        taskQueue: name,
        temporalPids,
        dataDir,
        progress,
      });
    }
    const ownFloor = floor ? floorFor(floor, options.sharedProcess) : undefined;

    progress('retention deletes: every closed run of the pipeline');
    const { connection, client } = await connectTemporal(config);
    // The last of the measurements on Temporal: a failure here is reported with the rest, not in their place.
    const deletes: BenchResult['deletes'] = await measureDeletes({ client, connection, namespace: config.temporalNamespace, taskQueue: name, temporalPids })
      .catch((err: Error) => ({ failed: err.message }))
      .finally(() => connection.close());
    progress('failed' in deletes ? deletes.failed : `retention deletes: ${deletes.runs} runs in ${deletes.seconds} s`);

    let baseline: BenchResult['baseline'] = null;
    if (options.baseline) {
      progress(`baseline: the same ${options.messages} messages through a relay without Temporal`);
      const relayStores = openStores(config);
      cleanups.push(() => relayStores.close());
      const relayCpuBefore = process.cpuUsage();
      const relayInput = messages.next(RELAY_ENTITY, options.messages);
      const relay = await enqueueAndTime(stores, relayInput, 'the relay', () =>
        relayPending(relayStores, { concurrency: WORKER_SLOTS, claimBatchSize: config.claimBatchSize, leaseMs: config.leaseMs, maxDataBytes: config.maxDataBytes }),
      );
      const relayCpu = process.cpuUsage(relayCpuBefore);
      const relayRate = options.messages / relay.seconds;
      progress(`baseline: ${relay.seconds.toFixed(1)} s, ${relayRate.toFixed(1)} messages/s`);
      baseline = {
        messages: options.messages,
        seconds: round(relay.seconds),
        rate: round(relayRate),
        concurrency: WORKER_SLOTS,
        cpuSecondsPer1000: round(((relayCpu.user + relayCpu.system) / 1e6 / options.messages) * 1000),
        ratio: round(drainRate / relayRate),
      };
    }

    const problems = await checkRun(stores.outbox, userTables ? (entities) => userTables!.readHeld(entities) : stores.target, [PIPELINE_ENTITY, RELAY_ENTITY]);
    if (problems.length > 0) throw new WrongRunError(problems);

    return {
      ok: true,
      startedAt,
      machine: {
        cores: cpus().length,
        cpu: cpus()[0]?.model.trim() ?? 'unknown',
        memoryGiB: round(totalmem() / 2 ** 30),
        loadAverageAtStart: loadAtStart.map(round),
        loadAverageAtEnd: loadavg().map(round),
      },
      versions: await versions(stores),
      settings: {
        messages: options.messages,
        keys: options.keys,
        steadySeconds: options.steadySeconds,
        claimBatch: config.claimBatchSize,
        pollMs: config.pollIntervalMs,
        processes: options.sharedProcess ? 'worker and dispatcher in one dev process, eager start' : 'worker and dispatcher as two processes',
        workerSlots: WORKER_SLOTS,
        maxInFlight: config.maxInFlight,
        poolSize: 10,
        mallocArenaMax,
        target: userTables?.describe ?? 'synced_records',
        temporal: server ? 'own dev server' : options.temporal!.describe,
        sqlitePragmas: server ? DEV_SERVER_SQLITE_PRAGMAS.join(', ') : 'n/a',
        dynamicConfig: server ? DEV_SERVER_DYNAMIC_CONFIG.join(', ') : 'n/a',
        ...(options.serverArgs.length > 0 ? { serverArgs: options.serverArgs.join(' ') } : {}),
      },
      drain: { messages: options.messages, keys: options.keys, seconds: round(drain.seconds), rate: round(drainRate), cpuPer1000: drainCost },
      steady,
      baseline,
      floor,
      deletes,
      floorRatio: ownFloor ? round(drainRate / ownFloor.rate) : null,
      peakRssMiB: { worker: mib(rssPeak.worker), dispatcher: dispatcher ? mib(rssPeak.dispatcher) : null, temporal: measuresTemporal ? mib(rssPeak.temporal) : null },
      highWaterRssMiB: {
        worker: mib(peak.worker?.peakRssBytes),
        dispatcher: dispatcher ? mib(peak.dispatcher?.peakRssBytes) : null,
        temporal: measuresTemporal ? mib(sum(Object.values(peak.temporal).map((s) => s?.peakRssBytes ?? NaN))) : null,
      },
    };
  } finally {
    await Promise.all(children.map((child) => child.kill()));
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => progress(`cleanup: ${(err as Error).message}`));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** What `--cluster` writes: the same bench on the bench's own dev server and on the cluster, in one sitting. */
export interface ClusterComparison {
  ok: true;
  startedAt: string;
  devServer: BenchResult;
  cluster: BenchResult;
}

export class WrongRunError extends Error {
  constructor(readonly problems: string[]) {
    super(`the run was wrong, so no figures are reported:\n  ${problems.join('\n  ')}`);
  }
}

/** Messages over `keys` keys, each version higher than the last one sent for its key; every 20th a delete. */
class MessageMaker {
  private sequence = 0;
  constructor(private readonly keys: number) {}

  next(entity: string, count: number): MessageInput[] {
    return Array.from({ length: count }, () => {
      const n = this.sequence++;
      const key = `k${n % this.keys}`;
      if (n % 20 === 19) return { entity, key, op: 'delete' as const, version: n + 1, source: 'bench' };
      return { entity, key, version: n + 1, source: 'bench', data: { n, customer: `c${n % 97}`, total: (n % 1000) / 10, items: [n % 7, n % 11, n % 13] } };
    });
  }
}

/**
 * Enqueues the messages in one transaction (so all become pending at once), runs `work` if given, and
 * returns the seconds from the commit to the last completion, by the database's clock.
 */
async function enqueueAndTime(stores: Stores, input: MessageInput[], what: string, work?: () => Promise<unknown>): Promise<{ seconds: number }> {
  const client = await stores.outbox.connect();
  let ids: number[] = [];
  let committedAt: number;
  try {
    await client.query('BEGIN');
    for (let i = 0; i < input.length; i += 1_000) ids = ids.concat(await enqueueBatch(client, input.slice(i, i + 1_000)));
    await client.query('COMMIT');
    committedAt = Number((await client.query('SELECT extract(epoch FROM clock_timestamp())::float8 AS t')).rows[0].t);
  } finally {
    client.release();
  }
  await work?.();
  await waitCompleted(stores.outbox, ids[0]!, ids[ids.length - 1]!, what);
  const { rows } = await stores.outbox.query('SELECT extract(epoch FROM max(completed_at))::float8 AS t FROM outbox_messages WHERE id BETWEEN $1 AND $2', [
    ids[0],
    ids[ids.length - 1],
  ]);
  return { seconds: Number(rows[0].t) - committedAt };
}

/** Sends messages at `rate` per second for `durationMs`, without waiting for the pipeline (open loop). */
async function produceOpenLoop(stores: Stores, maker: MessageMaker, rate: number, durationMs: number): Promise<{ count: number; firstId: number; lastId: number }> {
  const start = Date.now();
  const inserts: Promise<number[]>[] = [];
  let sent = 0;
  for (;;) {
    const elapsed = Math.min(Date.now() - start, durationMs);
    const due = Math.floor((elapsed / 1000) * rate) - sent;
    if (due > 0) {
      inserts.push(enqueueBatch(stores.outbox, maker.next(PIPELINE_ENTITY, due)));
      sent += due;
    }
    if (elapsed >= durationMs) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const ids = (await Promise.all(inserts)).flat();
  if (ids.length === 0) throw new Error('the steady phase sent no message: give it more seconds or a higher rate');
  return { count: ids.length, firstId: Math.min(...ids), lastId: Math.max(...ids) };
}

/** Waits until no message in the id range is pending, processing or failed; stops when progress stalls. */
async function waitCompleted(outbox: pg.Pool, firstId: number, lastId: number, what: string): Promise<void> {
  let lastOpen = Infinity;
  let lastProgress = Date.now();
  for (;;) {
    const { rows } = await outbox.query(
      `SELECT count(*)::int AS open FROM outbox_messages WHERE id BETWEEN $1 AND $2 AND status IN ('pending', 'processing', 'failed')`,
      [firstId, lastId],
    );
    const open = rows[0].open as number;
    if (open === 0) return;
    if (open < lastOpen) {
      lastOpen = open;
      lastProgress = Date.now();
    } else if (Date.now() - lastProgress > STALL_MS) {
      throw new Error(`${what}: ${open} messages made no progress for ${STALL_MS / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Enqueue→completed latencies of the range, whole and in its two parts (the claim read from the status history), in one read. */
async function latencies(outbox: pg.Pool, firstId: number, lastId: number): Promise<Pick<SteadyResult, 'latencyMs' | 'stagesMs'>> {
  const { rows } = await outbox.query(
    `SELECT percentile_disc(ARRAY[0.5, 0.95, 0.99, 1]) WITHIN GROUP (ORDER BY extract(epoch FROM m.completed_at - m.created_at) * 1000) AS whole,
            percentile_disc(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM c.at - m.created_at) * 1000) AS to_claimed,
            percentile_disc(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM m.completed_at - c.at) * 1000) AS claimed_to_completed
       FROM outbox_messages m
       -- The history's time is its transaction's start, which can precede the message's own: no claim is earlier than the message.
       CROSS JOIN LATERAL (SELECT greatest(min(h.at), m.created_at) AS at FROM outbox_message_history h WHERE h.message_id = m.id AND h.to_status = 'processing') c
      WHERE m.id BETWEEN $1 AND $2 AND m.entity = $3`,
    [firstId, lastId, PIPELINE_ENTITY],
  );
  const ms = (values: number[]) => values.map((v) => Math.round(Number(v)));
  const [p50, p95, p99, max] = ms(rows[0].whole as number[]);
  const pair = (values: number[]) => {
    const [p50, p99] = ms(values);
    return { p50: p50!, p99: p99! };
  };
  return {
    latencyMs: { p50: p50!, p95: p95!, p99: p99!, max: max! },
    stagesMs: { toClaimed: pair(rows[0].to_claimed as number[]), claimedToCompleted: pair(rows[0].claimed_to_completed as number[]) },
  };
}

interface Pids {
  worker: number;
  dispatcher: number | null;
  /** Temporal's processes by name: the dev server, or the cluster's services; none when not measured. */
  temporal: Record<string, number>;
  persistence: (() => number[]) | null;
}
interface Samples {
  worker: ProcessSample | null;
  dispatcher: ProcessSample | null;
  temporal: Record<string, ProcessSample | null>;
  /** CPU seconds of each database backend, by pid. */
  persistence: Map<number, number> | null;
}

function sampleAll(pids: Pids): Samples {
  return {
    worker: sampleProcess(pids.worker),
    dispatcher: pids.dispatcher ? sampleProcess(pids.dispatcher) : null,
    temporal: Object.fromEntries(Object.entries(pids.temporal).map(([name, pid]) => [name, sampleProcess(pid)])),
    persistence: pids.persistence ? sampleBackends(pids.persistence()) : null,
  };
}

function sampleBackends(pids: number[]): Map<number, number> {
  const cpu = new Map<number, number>();
  for (const pid of pids) {
    const sample = sampleProcess(pid);
    if (sample) cpu.set(pid, sample.cpuSeconds);
  }
  return cpu;
}

function costPer1000(before: Samples, after: Samples, messages: number): Cost {
  const per1000 = (seconds: number) => round((seconds / messages) * 1000);
  const used = (a: ProcessSample | null | undefined, b: ProcessSample | null | undefined) => (a && b ? b.cpuSeconds - a.cpuSeconds : null);
  const services = Object.keys(before.temporal).map((name) => [name, used(before.temporal[name], after.temporal[name])] as const);
  const temporal = services.length === 0 || services.some(([, s]) => s === null) ? null : sum(services.map(([, s]) => s!));
  const worker = used(before.worker, after.worker);
  const dispatcher = used(before.dispatcher, after.dispatcher);
  return {
    worker: worker === null ? NaN : per1000(worker),
    dispatcher: dispatcher === null ? null : per1000(dispatcher),
    temporal: temporal === null ? null : per1000(temporal),
    ...(services.length > 1 ? { temporalServices: Object.fromEntries(services.map(([name, s]) => [name, s === null ? null : per1000(s)])) } : {}),
    ...(before.persistence && after.persistence ? backendsCost(before.persistence, after.persistence, per1000) : {}),
  };
}

/**
 * The database backends' CPU between two samples, by pid. One that started in between counts in full (all
 * its CPU falls in the phase); one that ended in between is lost with its last ticks, and only counted in
 * temporalPostgresEnded (the cluster's pools keep their connections for an hour, so few end).
 */
function backendsCost(before: Map<number, number>, after: Map<number, number>, per1000: (seconds: number) => number): Pick<Cost, 'temporalPostgres' | 'temporalPostgresEnded'> {
  const used = sum([...after].map(([pid, cpu]) => cpu - (before.get(pid) ?? 0)));
  const ended = [...before.keys()].filter((pid) => !after.has(pid)).length;
  return { temporalPostgres: per1000(used), ...(ended > 0 ? { temporalPostgresEnded: ended } : {}) };
}

/** Runs `outbox-sync <command>` and resolves once its output says it is running. */
async function startProcess(command: string[], env: Record<string, string>, ready: RegExp, children: ProcessHandle[]): Promise<ProcessHandle> {
  // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the worker and the dispatcher.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawnCli(command, childEnv(env), { nodeArgs, keepOutput: 20_000 });
  children.push(child);
  await child.waitFor(ready, STALL_MS);
  return child;
}

async function versions(stores: Stores): Promise<Record<string, string>> {
  const temporal = findTemporalBinary();
  const postgres = (await stores.outbox.query('SHOW server_version')).rows[0].server_version as string;
  const redis = /redis_version:(\S+)/.exec(await stores.redis.info('server'))?.[1] ?? 'unknown';
  const sdk = JSON.parse(readFileSync(join(packageRoot, 'node_modules', '@temporalio', 'worker', 'package.json'), 'utf8')).version as string;
  return {
    node: process.version,
    temporalSdk: sdk,
    temporalCli: temporal ? execFileSync(temporal, ['--version'], { encoding: 'utf8' }).trim() : 'unknown',
    postgres,
    redis,
  };
}

async function deleteKeys(stores: Stores, prefix: string): Promise<void> {
  for await (const keys of stores.redis.scanStream({ match: `${prefix}*`, count: 1000 })) {
    if ((keys as string[]).length > 0) await stores.redis.del(...(keys as string[]));
  }
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

function mib(bytes: number | undefined): number {
  return bytes === undefined ? NaN : Math.round(bytes / 2 ** 20);
}

/** The table printed at the end of a run. */
export function formatTable(r: BenchResult): string {
  const shared = r.peakRssMiB.dispatcher === null;
  const ours = shared ? 'worker + dispatcher (one process)' : 'worker';
  const cost = (c: Cost) => `${ours} ${c.worker} s${shared ? '' : `, dispatcher ${c.dispatcher} s`}, Temporal ${c.temporal ?? 'n/a'} s`;
  const lines = [
    `machine   ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB; load average ${r.machine.loadAverageAtStart.join(' ')} at start, ${r.machine.loadAverageAtEnd.join(' ')} at end`,
    `versions  ${Object.entries(r.versions).map(([k, v]) => `${k} ${v.replace(/\s+/g, ' ')}`).join('; ')}`,
    `settings  ${Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join('; ')}`,
    '',
    `| measure | result |`,
    `|---|---|`,
    `| drain: ${r.drain.messages} messages over ${r.drain.keys} keys | ${r.drain.seconds} s, **${r.drain.rate} msg/s** |`,
    ...r.steady.map(
      (s) =>
        `| steady at ${s.fraction * 100} % (${s.targetRate} msg/s, ${s.sent} sent): enqueue→completed | p50 ${s.latencyMs.p50} ms, p95 ${s.latencyMs.p95} ms, **p99 ${s.latencyMs.p99} ms** (max ${s.latencyMs.max}); to claimed p50/p99 ${s.stagesMs.toClaimed.p50}/${s.stagesMs.toClaimed.p99} ms, claimed to completed ${s.stagesMs.claimedToCompleted.p50}/${s.stagesMs.claimedToCompleted.p99} ms |`,
    ),
    ...(r.baseline
      ? [
          `| baseline: relay without Temporal, ${r.baseline.concurrency} at once | ${r.baseline.seconds} s, **${r.baseline.rate} msg/s** |`,
          `| pipeline / baseline | **${Math.round(r.baseline.ratio * 100)} %** |`,
        ]
      : []),
    ...(r.floor
      ? [
          ...r.floor.runs.map(
            (f) =>
              `| floor: ${describeVariant(f)}, ${f.workflows} workflows, ${r.floor!.inFlight} in flight | **${f.rate} workflows/s**; CPU per workflow: Temporal ${f.temporalCpuMs ?? 'n/a'} ms, floor process ${f.processCpuMs} ms |`,
          ),
          `| drain / its floor (two local activities, ${shared ? 'eager' : 'non-eager'}) | **${r.floorRatio === null ? 'n/a' : `${Math.round(r.floorRatio * 100)} %`}** |`,
        ]
      : []),
    'failed' in r.deletes
      ? `| retention deletes | **failed**: ${r.deletes.failed} |`
      : `| retention deletes: ${r.deletes.runs} closed runs | ${r.deletes.seconds} s; Temporal CPU ${r.deletes.temporalCpuMs ?? 'n/a'} ms per run${deleteShare(r.deletes, r.drain.cpuPer1000.temporal)} |`,
    `| peak RSS while working | ${ours} ${r.peakRssMiB.worker} MiB${shared ? '' : `, dispatcher ${r.peakRssMiB.dispatcher} MiB`}, Temporal ${r.peakRssMiB.temporal ?? 'n/a'} MiB |`,
    `| RSS high-water mark, start-up included | ${ours} ${r.highWaterRssMiB.worker} MiB${shared ? '' : `, dispatcher ${r.highWaterRssMiB.dispatcher} MiB`}, Temporal ${r.highWaterRssMiB.temporal ?? 'n/a'} MiB |`,
    `| CPU per 1,000 messages, drain | ${cost(r.drain.cpuPer1000)}${r.baseline ? `; relay ${r.baseline.cpuSecondsPer1000} s` : ''} |`,
    ...r.steady.map((s) => `| CPU per 1,000 messages, steady ${s.fraction * 100} % | ${cost(s.cpuPer1000)} |`),
  ];
  return lines.join('\n');
}

/** The deletes' server CPU per run as a share of the drain's per message: what retention adds in the steady state. */
function deleteShare(deletes: Deletes, drainMs: number | null): string {
  if (deletes.temporalCpuMs === null || drainMs === null || drainMs === 0) return '';
  return ` (${Math.round((deletes.temporalCpuMs / drainMs) * 100)} % of the drain's per message)`;
}

function nonNegativeInt(value: string): number {
  if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(value);
}

function positiveInt(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive integer');
  return Number(value);
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('bench')
    .description('throughput, latency and cost of the pipeline on this machine, beside a relay without Temporal')
    .option('--messages <n>', 'messages in the drain and the baseline', positiveInt, 5_000)
    .option('--keys <n>', 'distinct keys the messages go over (default: messages / 5)', positiveInt)
    .option('--steady-seconds <n>', 'length of each steady phase', positiveInt, 30)
    .option('--floor-workflows <n>', 'workflows per floor variant (0: no floor)', nonNegativeInt, 3_000)
    .option('--floor-in-flight <n>', 'floor workflows open at once', positiveInt, 200)
    .option('--json', 'print the result as one JSON object on the last line')
    .option('--out <dir>', 'where the result file is written', join(packageRoot, 'bench', 'results'))
    .option('--temporal-address <host:port>', 'use this Temporal server instead of starting one (its CPU is then not measured)')
    .addOption(
      new Option('--cluster', 'run on its own dev server, then on the production server of scripts/cluster.sh over mTLS, and compare').conflicts('temporalAddress'),
    )
    .option('--shared-process', 'run the worker and the dispatcher in one `outbox-sync dev` process (eager workflow start)')
    .option('--server-arg <arg>', 'an extra argument for the dev server the bench starts (repeatable)', (arg: string, all: string[]) => [...all, arg], [] as string[])
    .addOption(
      new Option('--target <where>', "where the rows go: synced_records, or a user's own tables in PostgreSQL or MariaDB/MySQL (BENCH_MYSQL_URL)")
        .choices(BENCH_TARGETS)
        .default('synced'),
    )
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`bench: ${text.replace(/^error: /, '').trim()}\n`) });
  try {
    program.parse(argv);
  } catch (err) {
    process.exitCode = (err as { exitCode?: number }).exitCode === 0 ? 0 : 2;
    return;
  }
  const opts = program.opts<{
    messages: number;
    keys?: number;
    steadySeconds: number;
    floorWorkflows: number;
    floorInFlight: number;
    json?: boolean;
    out: string;
    temporalAddress?: string;
    cluster?: boolean;
    sharedProcess?: boolean;
    serverArg: string[];
    target: BenchTarget;
  }>();
  const options: BenchOptions = {
    messages: opts.messages,
    keys: opts.keys ?? Math.max(1, Math.floor(opts.messages / 5)),
    steadySeconds: opts.steadySeconds,
    json: Boolean(opts.json),
    out: opts.out,
    temporal: opts.temporalAddress ? { env: { TEMPORAL_ADDRESS: opts.temporalAddress }, describe: `existing at ${opts.temporalAddress}` } : undefined,
    baseline: true,
    floorWorkflows: opts.floorWorkflows,
    floorInFlight: opts.floorInFlight,
    sharedProcess: Boolean(opts.sharedProcess),
    serverArgs: opts.serverArg,
    postgresUrl: process.env.BENCH_POSTGRES_URL ?? 'postgres://127.0.0.1:5432/postgres',
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    target: opts.target,
    mysqlUrl: process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306',
  };
  const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);
  try {
    let result: BenchResult | ClusterComparison;
    let table: string;
    if (opts.cluster) {
      // The relay does not involve Temporal: it runs once, in the dev server's pass.
      const devServer = await runBench(options, progress);
      const cluster = await withCluster(progress, (temporal) => runBench({ ...options, temporal, baseline: false }, progress));
      result = { ok: true, startedAt: devServer.startedAt, devServer, cluster };
      table = formatComparison(devServer, cluster);
    } else {
      result = await runBench(options, progress);
      table = formatTable(result);
    }
    mkdirSync(options.out, { recursive: true });
    const file = join(options.out, `${result.startedAt.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(table);
    console.log(`\nwritten to ${file}`);
    if (options.json) console.log(JSON.stringify(result));
  } catch (err) {
    if (err instanceof WrongRunError) {
      process.stderr.write(`bench: ${err.message}\n`);
      if (options.json) console.log(JSON.stringify({ ok: false, problems: err.problems }));
    } else {
      process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    }
    process.exitCode = 1;
  }
}

if (require.main === module) void main(process.argv);
