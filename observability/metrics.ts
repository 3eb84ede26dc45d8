/**
 * Prometheus metrics (prom-client's default registry). Every process has the Node.js process metrics;
 * each adds what it sees: the worker its activities and outcomes, the dispatcher its starts and
 * re-executions, whoever holds an outbox pool the counts by status and the last verify run's result (read
 * from the outbox at scrape time, so many processes report the same truth rather than partial counters).
 */
import client from 'prom-client';
import type pg from 'pg';
import { ALL_STATUSES } from '../stores/outbox/state-machine';
import { readStatus } from '../stores/outbox/messages';
import { readLastVerifyRun, type VerifyRun } from '../stores/outbox/verify-runs';

export const registry = client.register;

/** Latency buckets from 5 ms to 10 minutes: a message's wait runs from milliseconds to a redrive's backoff. */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600];

let processMetrics = false;
/** The Node.js process metrics (CPU, memory, event loop lag), once per process. */
export function collectProcessMetrics(): void {
  if (processMetrics) return;
  processMetrics = true;
  client.collectDefaultMetrics({ register: registry });
}

function metric<T extends client.Metric>(name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

function counter<L extends string>(config: client.CounterConfiguration<L>): client.Counter<L> {
  return metric(config.name, () => new client.Counter(config));
}

function histogram<L extends string>(config: client.HistogramConfiguration<L>): client.Histogram<L> {
  return metric(config.name, () => new client.Histogram(config));
}

/** What the worker and the dispatcher count and time. Created on first use, shared by the process. */
export function pipelineMetrics() {
  return {
    outcomes: counter({
      name: 'outbox_sync_outcomes_total',
      help: 'Outcomes recorded in the outbox, by the status they left the message in (completed, failed, dead) and the target database (a name from OUTBOX_SYNC_TARGETS, or TARGET_DATABASE_URL).',
      labelNames: ['status', 'target'] as const,
    }),
    endToEnd: histogram({
      name: 'outbox_sync_end_to_end_seconds',
      help: 'From enqueue to the recorded outcome of a message, by that outcome and the target database.',
      labelNames: ['status', 'target'] as const,
      buckets: SECONDS,
    }),
    startDelay: histogram({
      name: 'outbox_sync_start_delay_seconds',
      help: 'From enqueue to the start of the message\'s first workflow execution.',
      buckets: SECONDS,
    }),
    activity: histogram({
      name: 'outbox_sync_activity_seconds',
      help: 'Duration of each activity attempt (stageToCache is the cache stage, persistToTarget the persist stage), by result.',
      labelNames: ['activity', 'result'] as const,
      buckets: SECONDS,
    }),
    reexecutions: counter({
      name: 'outbox_sync_reexecutions_total',
      help: 'Executions started again: failed messages redriven, and stuck ones whose workflow was gone.',
      labelNames: ['reason'] as const,
    }),
    startFailures: counter({
      name: 'outbox_sync_start_failures_total',
      help: 'Workflow starts that failed and will be tried again.',
    }),
  };
}

export type PipelineMetrics = ReturnType<typeof pipelineMetrics>;

/** 1 while a starting worker or dispatcher waits for that dependency (servers/start-up.ts), else 0. */
export function waitingGauge(): client.Gauge<'dependency'> {
  const config = {
    name: 'outbox_sync_waiting_for',
    help: 'While a worker or dispatcher starts: 1 for the dependency (by the setting naming it) it waits for, 0 once it answers.',
    labelNames: ['dependency'] as const,
  };
  return metric(config.name, () => new client.Gauge(config));
}

/** `read`, called at most once a second: the gauges of one scrape, collected side by side, share its answer. */
function sharedForASecond<T>(read: () => Promise<T>): () => Promise<T> {
  let reading: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (!reading || Date.now() - reading.at > 1_000) reading = { at: Date.now(), value: read() };
    return reading.value;
  };
}

/**
 * Counts by status, the oldest pending message's age and the overdue messages (under this process's
 * OUTBOX_SYNC_SLA_SECONDS), read from the outbox at each scrape.
 */
export function registerOutboxGauges(outbox: pg.Pool, sla: { slaSeconds: number | null }): void {
  if (registry.getSingleMetric('outbox_sync_messages')) return;
  // The gauges are collected side by side; one outbox read per scrape serves them all.
  const read = sharedForASecond(() => readStatus(outbox, { slaSeconds: sla.slaSeconds }).catch(() => null));
  new client.Gauge({
    name: 'outbox_sync_outbox_up',
    help: '1 if the last scrape could read the outbox, 0 if not (the other outbox gauges then keep their last values).',
    async collect() {
      this.set((await read()) ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'outbox_sync_oldest_pending_seconds',
    help: 'Age of the oldest pending message (0 when none is pending).',
    async collect() {
      const status = await read();
      if (status) this.set(status.oldestPendingSeconds);
    },
  });
  new client.Gauge({
    name: 'outbox_sync_overdue_messages',
    help: 'Messages not completed within the SLA (OUTBOX_SYNC_SLA_SECONDS) after they were sent: pending, processing or failed; 0 without an SLA.',
    async collect() {
      const status = await read();
      if (status) this.set(status.overdue);
    },
  });
  new client.Gauge({
    name: 'outbox_sync_messages',
    help: 'Messages in the outbox, by status.',
    labelNames: ['status'] as const,
    async collect() {
      const status = await read();
      if (status) for (const name of ALL_STATUSES) this.set({ status: name }, status.counts[name]);
    },
  });
  registerVerifyGauges(outbox);
}

const VERIFY_PROBLEMS = ['missing', 'stale', 'different'] as const;

/**
 * The newest `verify` run over every entity (stores/outbox/verify-runs.ts), read from the outbox at each
 * scrape. Before verify has ever run, the time is 0 (so an alert on its age fires) and the others have no
 * sample: there is no result to report. While the outbox cannot be read they keep their last values.
 */
function registerVerifyGauges(outbox: pg.Pool): void {
  const read = sharedForASecond((): Promise<VerifyRun | null | 'unread'> => readLastVerifyRun(outbox).catch(() => 'unread' as const));
  new client.Gauge({
    name: 'outbox_sync_verify_last_run_timestamp_seconds',
    help: 'When the last verify run over every entity ended, in Unix seconds; 0 when verify has never run.',
    async collect() {
      const run = await read();
      if (run !== 'unread') this.set(run ? run.finishedAt.getTime() / 1000 : 0);
    },
  });
  /** A gauge of one figure of the last run, without a sample until there is a run (prom-client starts it at 0). */
  const figure = (name: string, help: string, value: (run: VerifyRun) => number) => {
    const gauge = new client.Gauge({
      name,
      help,
      async collect() {
        const run = await read();
        if (run === null) this.remove({});
        else if (run !== 'unread') this.set(value(run));
      },
    });
    gauge.remove({});
  };
  figure(
    'outbox_sync_verify_passed',
    '1 if the last verify run over every entity found the target matching the outbox, 0 if it found keys that differ; no sample before verify has run.',
    (run) => (run.passed ? 1 : 0),
  );
  figure('outbox_sync_verify_checked_keys', 'Keys the last verify run over every entity compared with the target; no sample before verify has run.', (run) => run.checked);
  new client.Gauge({
    name: 'outbox_sync_verify_problems',
    help: 'Keys the last verify run over every entity found wrong in the target, by problem: missing, stale (an older version) or different; no sample before verify has run.',
    labelNames: ['problem'] as const,
    async collect() {
      const run = await read();
      if (run && run !== 'unread') for (const problem of VERIFY_PROBLEMS) this.set({ problem }, run[problem]);
    },
  });
}

/** The exposition text: this process's metrics, then (if given) the Temporal SDK's own from its exporter. */
export async function exposition(sdkMetricsUrl?: string): Promise<string> {
  const own = await registry.metrics();
  if (!sdkMetricsUrl) return own;
  try {
    const response = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(2_000) });
    return `${own}\n${await response.text()}`;
  } catch {
    return own;
  }
}
