/**
 * The fault-injection run: a seeded workload (many keys, several versions each, deletes, sent out of
 * order) drained by worker and dispatcher processes while faults are injected in a seeded order at
 * seeded points of progress, and a consumer reads the streams throughout; then the promises are checked
 * against the outbox, the target, Temporal's own record of the executions and what the consumer read,
 * `outbox-sync verify` is run as an operator would, and all of it is printed as a table.
 */
import { isDeepStrictEqual } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { enqueueBatch } from '../../stores/outbox/enqueue';
import type { MessageInput } from '../../stores/outbox/validate';
import { runCli } from '../support/processes';
import { StreamConsumer } from './consumer';
import { ChaosEnvironment } from './environment';
import type { ChaosTargetKind } from './target';

export interface ChaosOptions {
  /** Where the messages land: synced_records, or a user's table in PostgreSQL or MariaDB. */
  target: ChaosTargetKind;
  messages: number;
  seed: number;
  workers: number;
  dispatchers: number;
  /** How long the target stays unreachable. */
  targetOutageMs: number;
  /** How long Redis stays unreachable (keeping its data). */
  redisOutageMs: number;
  /** Give up waiting for the drain after this long. */
  drainTimeoutMs: number;
  /** No faults: the backlog-drain mode (a backlog of `messages` pending, then measured as it drains). */
  faults: boolean;
  log: (line: string) => void;
}

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same workload and fault plan. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Expected {
  version: number;
  op: 'upsert' | 'delete';
  data: Record<string, unknown> | null;
}

const ENTITY = 'chaos';

/** Messages over n/4 keys, versions rising per key with gaps, about one in eight a delete, shuffled. */
export function workload(n: number, rand: () => number): { messages: MessageInput[]; expected: Map<string, Expected> } {
  const keys = Math.max(1, Math.floor(n / 4));
  const versions = new Array<number>(keys).fill(0);
  const expected = new Map<string, Expected>();
  const messages: MessageInput[] = [];
  for (let i = 0; i < n; i++) {
    const k = Math.floor(rand() * keys);
    versions[k]! += 1 + Math.floor(rand() * 3);
    const key = `k${k}`;
    const version = versions[k]!;
    const op = rand() < 0.125 ? 'delete' : 'upsert';
    const data = op === 'delete' ? null : { key, version, note: 'x'.repeat(Math.floor(rand() * 200)) };
    messages.push({ entity: ENTITY, key, version, op, ...(data ? { data } : {}) });
    expected.set(key, { version, op, data });
  }
  for (let i = messages.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [messages[i], messages[j]] = [messages[j]!, messages[i]!];
  }
  return { messages, expected };
}

type FaultKind =
  | 'kill worker'
  | 'kill dispatcher'
  | 'restart Temporal'
  | 'Redis FLUSHALL'
  | 'restart Redis'
  | 'Redis unreachable'
  | 'terminate target connections'
  | 'target unreachable'
  | 'terminate outbox connections';

export const FAULTS: readonly FaultKind[] = [
  'kill worker',
  'kill worker',
  'kill worker',
  'kill dispatcher',
  'kill dispatcher',
  'restart Temporal',
  'Redis FLUSHALL',
  'restart Redis',
  'Redis unreachable',
  'terminate target connections',
  'target unreachable',
  'terminate outbox connections',
];

interface PlannedFault {
  kind: FaultKind;
  /** Fires once this fraction of the messages is completed. */
  atProgress: number;
  pick: number;
  downMs: number;
}

/** The faults in a seeded order, each at a seeded point of progress between 5% and 85%. */
export function faultPlan(rand: () => number): PlannedFault[] {
  const order = [...FAULTS];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const points = order.map(() => 0.05 + rand() * 0.8).sort((a, b) => a - b);
  return order.map((kind, i) => ({ kind, atProgress: points[i]!, pick: Math.floor(rand() * 1000), downMs: 1000 + Math.floor(rand() * 3000) }));
}

export interface FaultRecord {
  kind: FaultKind;
  atSecond: number;
  atCompleted: number;
  detail: string;
}

export interface ChaosResult {
  target: ChaosTargetKind;
  seed: number;
  messages: number;
  keys: number;
  counts: Record<string, number>;
  missingFromOutbox: number;
  targetWrong: number;
  targetBehind: number;
  workflowIds: number;
  runs: number;
  overlappingRuns: number;
  openRuns: number;
  runsBeyondClaims: number;
  lost: number;
  faults: FaultRecord[];
  unplannedExits: number;
  drainSeconds: number;
  rate: number;
  peakRss: { worker: number; dispatcher: number };
  rssAt: { progress: number; worker: number; dispatcher: number }[];
  drained: boolean;
  streams: StreamsChecked;
  verify: VerifyRan;
}

/** What the stream consumer read, held against the outbox's history of transitions. */
export interface StreamsChecked {
  /** Transitions to completed, failed and dead in outbox_message_history. */
  transitions: number;
  /** Of those, the ones the consumer never read on their stream (completed on the success stream, failed and dead on the failure stream). */
  unseen: number;
  /** Entries naming a transition the history does not hold. */
  unknown: number;
  entries: number;
  /** Entries read more than once (at least once is the promise). */
  repeats: number;
  /** Reads that failed while Redis did not answer, each tried again from the same ids. */
  failedReads: number;
}

/** `outbox-sync verify --json` at the end of the run. */
export interface VerifyRan {
  code: number | null;
  seconds: number;
  report: { checked: number; missing: number; stale: number; different: number } | null;
  /** Its stderr, when it printed any. */
  error: string;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const { log } = options;
  const rand = prng(options.seed);
  const { messages, expected } = workload(options.messages, rand);
  const plan = options.faults ? faultPlan(rand) : [];
  log(`chaos: seed ${options.seed} (replay with CHAOS_SEED=${options.seed} CHAOS_MESSAGES=${options.messages} CHAOS_TARGETS=${options.target}), ${messages.length} messages over ${expected.size} keys into ${options.target}`);
  if (plan.length > 0) log(`chaos: fault plan: ${plan.map((f) => `${f.kind} @${Math.round(f.atProgress * 100)}%`).join(', ')}`);

  const env = await ChaosEnvironment.start({
    target: options.target,
    entity: ENTITY,
    workers: options.workers,
    dispatchers: options.dispatchers,
    log,
    // Defaults, except: a shorter lease so that stuck messages are found within the run, and quicker
    // redrive and polling so that the run does not mostly wait.
    settings: {
      OUTBOX_SYNC_LEASE_MS: '15000',
      OUTBOX_SYNC_REDRIVE_BASE_MS: '1000',
      OUTBOX_SYNC_REDRIVE_MAX_MS: '10000',
      OUTBOX_SYNC_POLL_MS: '250',
    },
  });
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  const faults: FaultRecord[] = [];
  const rssAt: ChaosResult['rssAt'] = [];
  let completed = 0;
  let stopSampling = false;
  // Through the same proxy as our processes: it is cut when they are.
  const consumer = new StreamConsumer(env.redisProxy.port, (stream) => env.streamKey(stream));
  try {
    // The backlog first, in batches (all or none each): with faults, four fifths up front and the rest
    // while the run goes on, so new messages also arrive through the faults.
    const upFront = options.faults ? Math.floor(messages.length * 0.8) : messages.length;
    const ids: number[] = [];
    for (let i = 0; i < upFront; i += 1000) ids.push(...(await enqueueBatch(env.outbox, messages.slice(i, Math.min(i + 1000, upFront)))));
    log(`chaos: ${ids.length} messages enqueued as a backlog in ${seconds()} s`);
    const producing = (async () => {
      for (let i = upFront; i < messages.length; i += 100) {
        await new Promise((r) => setTimeout(r, 500));
        ids.push(...(await enqueueBatch(env.outbox, messages.slice(i, Math.min(i + 100, messages.length)))));
      }
    })();

    const sampling = (async () => {
      let next = 0.25;
      while (!stopSampling) {
        env.samplePeakRss();
        if (completed >= next * messages.length) {
          rssAt.push({ progress: next, worker: env.currentRss('worker'), dispatcher: env.currentRss('dispatcher') });
          next += 0.25;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    })();

    const drainStarted = Date.now();
    const deadline = drainStarted + options.drainTimeoutMs;
    let lastReport = 0;
    let drained = false;
    while (Date.now() < deadline) {
      const counts = await statusCounts(env);
      completed = counts.completed ?? 0;
      const terminal = completed + (counts.dead ?? 0);
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        const rss = `RSS worker ${Math.round(env.currentRss('worker') / MB)} MiB, dispatcher ${Math.round(env.currentRss('dispatcher') / MB)} MiB`;
        log(`chaos: ${seconds()} s: ${JSON.stringify(counts)}, ${rss}`);
      }
      const fault = plan[0];
      if (fault && completed >= fault.atProgress * messages.length) {
        plan.shift();
        const at = { atSecond: seconds(), atCompleted: completed };
        const detail = await inject(env, consumer, fault, options);
        faults.push({ kind: fault.kind, ...at, detail });
        log(`chaos: ${at.atSecond} s, ${at.atCompleted} completed: ${fault.kind} (${detail})`);
        continue;
      }
      if (plan.length === 0 && ids.length === messages.length && terminal === messages.length) {
        drained = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const drainSeconds = (Date.now() - drainStarted) / 1000;
    await producing;
    stopSampling = true;
    await sampling;
    const peakRss = env.samplePeakRss();
    if (drained) rssAt.push({ progress: 1, worker: env.currentRss('worker'), dispatcher: env.currentRss('dispatcher') });

    const result = await check(env, ids, expected, options);
    const streams = await checkStreams(env, consumer, options);
    const verify = await runVerify(env);
    return {
      ...result,
      streams,
      verify,
      target: options.target,
      seed: options.seed,
      messages: messages.length,
      keys: expected.size,
      faults,
      unplannedExits: env.unplannedExits.length,
      drainSeconds,
      rate: (result.counts.completed ?? 0) / drainSeconds,
      peakRss,
      rssAt,
      drained,
    };
  } finally {
    stopSampling = true;
    await consumer.stop();
    await env.close();
  }
}

/**
 * Runs a fault that empties Redis once the consumer has read everything on the streams, with the
 * publishers held from then until the fault is done. An entry Redis loses before anyone reads it is not
 * appended again (README, The streams): without this, the consumer's check would measure a race between
 * the fault and the consumer's next read, not whether the publisher appended every transition.
 */
async function onceStreamsRead(env: ChaosEnvironment, consumer: StreamConsumer, fault: () => Promise<unknown>): Promise<void> {
  await env.withPublishersHeld(async () => {
    const last = await env.lastStreamIds();
    const deadline = Date.now() + 30_000;
    while (!consumer.hasRead(last) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await fault();
  });
}

async function inject(env: ChaosEnvironment, consumer: StreamConsumer, fault: PlannedFault, options: ChaosOptions): Promise<string> {
  switch (fault.kind) {
    case 'kill worker':
      return `SIGKILL pid ${await env.kill('worker', fault.pick)}, restarted`;
    case 'kill dispatcher':
      return `SIGKILL pid ${await env.kill('dispatcher', fault.pick)}, restarted`;
    case 'restart Temporal':
      await env.restartTemporal(fault.downMs);
      return `stopped, down ${fault.downMs} ms, restarted on the same SQLite file`;
    case 'Redis FLUSHALL':
      await onceStreamsRead(env, consumer, () => env.redis.flushall());
      return 'every staged copy and stream entry gone';
    case 'restart Redis':
      await onceStreamsRead(env, consumer, () => env.restartRedis(fault.downMs));
      return `SIGKILL, down ${fault.downMs} ms, restarted empty`;
    case 'Redis unreachable':
      await env.redisUnreachable(options.redisOutageMs);
      return `refused for ${options.redisOutageMs / 1000} s, keeping its data`;
    case 'terminate target connections':
      return `${await env.target.terminateConnections()} connections to ${env.target.database} terminated`;
    case 'target unreachable':
      env.target.proxy.refuse();
      await new Promise((r) => setTimeout(r, options.targetOutageMs));
      await env.target.proxy.restore();
      return `${env.target.database} refused for ${options.targetOutageMs / 1000} s`;
    case 'terminate outbox connections':
      return `${await env.terminateOutboxConnections()} connections of the dispatchers and activities terminated`;
  }
}

async function statusCounts(env: ChaosEnvironment): Promise<Record<string, number>> {
  const { rows } = await env.outbox.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM outbox_messages GROUP BY status');
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

type Checked = Pick<
  ChaosResult,
  'counts' | 'missingFromOutbox' | 'targetWrong' | 'targetBehind' | 'workflowIds' | 'runs' | 'overlappingRuns' | 'openRuns' | 'runsBeyondClaims' | 'lost'
>;

async function check(env: ChaosEnvironment, ids: number[], expected: Map<string, Expected>, options: ChaosOptions): Promise<Checked> {
  const counts = await statusCounts(env);
  const stored = await env.outbox.query<{ id: string; status: string; executions: number; workflow_id: string | null }>(
    'SELECT id, status, executions, workflow_id FROM outbox_messages WHERE id = ANY($1::bigint[])',
    [ids],
  );
  const missingFromOutbox = ids.length - stored.rows.length;
  const notTerminal = stored.rows.filter((r) => r.status !== 'completed' && r.status !== 'dead').length;

  // The target against the expected final state: per key, the highest version, deletes as tombstones
  // (in a user's table: the row gone or soft-deleted, the tombstone in the bookkeeping table).
  const landed = await env.target.read(ENTITY);
  let targetWrong = 0;
  let targetBehind = 0;
  for (const [key, want] of expected) {
    const got = landed.get(key);
    const right = got && got.version === want.version && got.deleted === (want.op === 'delete') && (want.op === 'delete' || isDeepStrictEqual(got.data, want.data));
    if (right) continue;
    targetWrong++;
    if (!got || got.version < want.version) targetBehind++;
    if (targetWrong <= 5) options.log(`chaos: key ${key}: expected ${JSON.stringify(want)}, target holds ${JSON.stringify(got ?? null)}`);
  }
  targetWrong += [...landed.keys()].filter((k) => !expected.has(k)).length;

  // One live execution per message, from Temporal's visibility records: the runs under each workflow id
  // (one id per message) must follow one another without overlapping, none may still be open, and a
  // message cannot have had more runs than claims (each claim starts at most one run).
  // Visibility records catch up a moment after a run closes: read them again while any run looks open.
  const connection = await Connection.connect({ address: env.temporalAddress });
  let seen: RunsSeen;
  try {
    const client = new Client({ connection });
    const deadline = Date.now() + 60_000;
    seen = await readRuns(client);
    while (seen.openRuns > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2000));
      seen = await readRuns(client);
    }
  } finally {
    await connection.close();
  }
  const { runsById, runs, overlappingRuns, openRuns } = seen;
  let runsBeyondClaims = 0;
  for (const row of stored.rows) {
    const n = row.workflow_id ? (runsById.get(row.workflow_id)?.length ?? 0) : 0;
    if (n > row.executions) runsBeyondClaims++;
  }

  // Lost: accepted but not in the outbox, never brought to an end, or whose newest version never
  // reached the target.
  const lost = missingFromOutbox + notTerminal + targetBehind;
  return { counts, missingFromOutbox, targetWrong, targetBehind, workflowIds: runsById.size, runs, overlappingRuns, openRuns, runsBeyondClaims, lost };
}

/**
 * Every transition to completed, failed and dead that the outbox's history records must have reached
 * the consumer on its stream, with its message and status (waiting, with a deadline, for the publisher's
 * last passes and the consumer's last reads).
 */
async function checkStreams(env: ChaosEnvironment, consumer: StreamConsumer, options: ChaosOptions): Promise<StreamsChecked> {
  const { rows: all } = await env.outbox.query<{ id: string; message_id: string; to_status: string }>('SELECT id::text, message_id::text, to_status FROM outbox_message_history');
  const history = all.filter((h) => h.to_status === 'completed' || h.to_status === 'failed' || h.to_status === 'dead');
  const unseenOf = () =>
    history.filter((h) => {
      const stream = h.to_status === 'completed' ? 'succeeded' : 'failed';
      return !consumer.byTransition.get(h.id)?.some((e) => e.stream === stream && e.status === h.to_status && e.messageId === h.message_id);
    });
  let unseen = unseenOf();
  const deadline = Date.now() + 60_000;
  while (unseen.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    unseen = unseenOf();
  }
  for (const h of unseen.slice(0, 5)) options.log(`chaos: transition ${h.id} (message ${h.message_id} to ${h.to_status}) never reached the consumer: ${JSON.stringify(consumer.byTransition.get(h.id) ?? null)}`);
  if (unseen.length > 0) {
    // The publisher appends only what transactions older than every open one wrote, server-wide: name the oldest open one.
    const { rows: open } = await env.outbox.query(
      `SELECT pid, datname, state, round(extract(epoch FROM now() - xact_start))::int AS seconds, left(query, 100) AS query
         FROM pg_stat_activity WHERE backend_xid IS NOT NULL ORDER BY xact_start LIMIT 1`,
    );
    if (open[0]) options.log(`chaos: the oldest open write transaction on the PostgreSQL server, which holds the streams back: ${JSON.stringify(open[0])}`);
  }
  // Any history row may name an entry (an SLA's overdue notice too); one that names none is unknown.
  const known = new Set(all.map((h) => h.id));
  let repeats = 0;
  for (const entries of consumer.byTransition.values()) repeats += entries.length - 1;
  return {
    transitions: history.length,
    unseen: unseen.length,
    unknown: [...consumer.byTransition.keys()].filter((t) => !known.has(t)).length,
    entries: consumer.entries,
    repeats,
    failedReads: consumer.failedReads,
  };
}

/** `outbox-sync verify --json` against the run's databases, as an operator runs it: its exit code and report. */
async function runVerify(env: ChaosEnvironment): Promise<VerifyRan> {
  const started = Date.now();
  const run = await runCli(['verify', '--json'], env.childEnv);
  const seconds = (Date.now() - started) / 1000;
  let report: VerifyRan['report'] = null;
  try {
    report = JSON.parse(run.stdout) as VerifyRan['report'];
  } catch {
    // No report: the exit code and stderr say why.
  }
  return { code: run.code, seconds, report, error: run.stderr.trim() };
}

interface RunsSeen {
  runsById: Map<string, { start: number; close: number | null }[]>;
  runs: number;
  overlappingRuns: number;
  openRuns: number;
}

/** Every run of the workflow type, by workflow id, with the overlaps and open runs among them. */
async function readRuns(client: Client): Promise<RunsSeen> {
  const runsById = new Map<string, { start: number; close: number | null }[]>();
  let runs = 0;
  for await (const run of client.workflow.list({ query: `WorkflowType = 'syncMessage'` })) {
    runs++;
    const list = runsById.get(run.workflowId) ?? [];
    list.push({ start: run.startTime.getTime(), close: run.closeTime?.getTime() ?? null });
    runsById.set(run.workflowId, list);
  }
  let overlappingRuns = 0;
  let openRuns = 0;
  for (const list of runsById.values()) {
    list.sort((a, b) => a.start - b.start);
    openRuns += list.filter((r) => r.close === null).length;
    for (let i = 1; i < list.length; i++) if (list[i - 1]!.close === null || list[i]!.start < list[i - 1]!.close!) overlappingRuns++;
  }
  return { runsById, runs, overlappingRuns, openRuns };
}

const MB = 1024 * 1024;

/** The result as the table the suite prints. */
export function formatTable(r: ChaosResult): string {
  const rows: [string, string, string][] = [
    ['seed', String(r.seed), `replay: CHAOS_SEED=${r.seed} CHAOS_MESSAGES=${r.messages} CHAOS_TARGETS=${r.target}`],
    ['target', r.target, r.target === 'synced' ? 'synced_records in PostgreSQL' : `a user's table in ${r.target === 'postgres' ? 'PostgreSQL' : 'MariaDB'}, mapped`],
    ['messages accepted', String(r.messages), `${r.keys} keys, several versions each, deletes, out of order`],
    ['terminal (completed or dead)', String((r.counts.completed ?? 0) + (r.counts.dead ?? 0)), `must be ${r.messages}`],
    ['completed', String(r.counts.completed ?? 0), `must be ${r.messages}`],
    ['dead', String(r.counts.dead ?? 0), 'must be 0'],
    ['stuck in processing', String(r.counts.processing ?? 0), 'must be 0'],
    ['pending / failed at the end', `${r.counts.pending ?? 0} / ${r.counts.failed ?? 0}`, 'must be 0 / 0'],
    ['target keys not as expected', String(r.targetWrong), 'highest version per key, deletes applied; must be 0'],
    ['workflow runs (ids)', `${r.runs} (${r.workflowIds})`, 'from Temporal visibility'],
    ['overlapping runs of one message', String(r.overlappingRuns), 'two live executions; must be 0'],
    ['runs still open', String(r.openRuns), 'must be 0'],
    ['messages with more runs than claims', String(r.runsBeyondClaims), 'must be 0'],
    ['stream transitions unseen', `${r.streams.unseen} of ${r.streams.transitions}`, 'completed, failed, dead in the outbox history, not read on their stream; must be 0'],
    [
      'stream entries read (repeats)',
      `${r.streams.entries} (${r.streams.repeats})`,
      `by a consumer reading through the faults (${r.streams.failedReads} failed reads tried again); ${r.streams.unknown} naming no transition`,
    ],
    [
      'outbox-sync verify at the end',
      `exit ${r.verify.code}`,
      r.verify.report
        ? `${r.verify.report.checked} keys checked: ${r.verify.report.missing} missing, ${r.verify.report.stale} stale, ${r.verify.report.different} different, in ${r.verify.seconds.toFixed(1)} s; must exit 0`
        : `no report: ${r.verify.error || 'nothing printed'}`,
    ],
    ['faults injected', String(r.faults.length), r.faults.map((f) => f.kind).join(', ') || 'none'],
    ['unplanned process exits', String(r.unplannedExits), 'restarted by the supervisor'],
    ['drain time', `${r.drainSeconds.toFixed(1)} s`, `${r.rate.toFixed(1)} messages/s`],
    ['peak RSS worker / dispatcher', `${(r.peakRss.worker / MB).toFixed(0)} / ${(r.peakRss.dispatcher / MB).toFixed(0)} MiB`, 'VmHWM, over every process of the run'],
    [
      'RSS at 25/50/75/100 % drained',
      r.rssAt.map((s) => `${(s.worker / MB).toFixed(0)}/${(s.dispatcher / MB).toFixed(0)}`).join('  ') || '-',
      'worker/dispatcher MiB, largest live process',
    ],
    ['MESSAGES LOST', String(r.lost), 'must be 0'],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  const line = `+${'-'.repeat(w0 + 2)}+${'-'.repeat(w1 + 2)}+`;
  const out = [line, ...rows.map(([a, b, c]) => `| ${a.padEnd(w0)} | ${b.padStart(w1)} | ${c}`), line];
  const faults = r.faults.map((f) => `  ${String(f.atSecond).padStart(7)} s  ${String(f.atCompleted).padStart(7)} done  ${f.kind}: ${f.detail}`);
  return [...out, ...(faults.length ? ['faults, in order:', ...faults] : [])].join('\n');
}
