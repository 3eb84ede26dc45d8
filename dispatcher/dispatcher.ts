/**
 * The dispatcher turns claimed messages into workflow executions. One process runs five duties, each a
 * module of its own:
 * - dispatch.ts: claim pending messages (pending → processing) and start one workflow each;
 * - redrive.ts: run failed messages again once their backoff has passed (failed → processing), and declare
 *   dead those out of executions;
 * - reconcile.ts: for a message left in processing past its lease, ask Temporal whether its workflow runs;
 *   if it does not, start a new execution;
 * - overdue.ts: with an SLA, mark the messages not completed within it, once each, for the failure stream;
 * - publish.ts: append every transition to completed, failed and dead, and every message become overdue,
 *   to the success or failure stream, from the outbox's record of transitions.
 * This class runs the first four in a loop woken by NOTIFY or the poll interval, and the publisher in a
 * loop of its own, so that Redis being slow or down never holds up claiming. Many dispatchers may run at
 * once: claims use SKIP LOCKED, and a start is idempotent by workflow id (USE_EXISTING while a run is
 * open), so a message never has two live executions; one publisher at a time holds the streams' cursor.
 */
import type { TargetsMapping } from '../stores/target/mapping';
import { EventEmitter } from 'node:events';
import type { Client } from '@temporalio/client';
import pg from 'pg';
import type { PipelineMetrics } from '../observability/metrics';
import type { ClaimedMessage } from '../stores/outbox/state-machine';
import type { PublishPass } from '../stores/outbox/stream-cursor';
import { dispatchPending } from './dispatch';
import { OutageReport, publishStreams, PUBLISH_BATCH, type StreamsTarget } from './publish';
import { reconcileExpired, type Reconciliation } from './reconcile';
import { redriveFailed } from './redrive';
import { sweepOverdue } from './overdue';
import type { OverdueMessage } from '../stores/outbox/overdue';
import { Starter, type StartSettings } from './start-execution';

export interface DispatcherSettings extends StartSettings {
  claimBatchSize: number;
  pollIntervalMs: number;
  leaseMs: number;
  maxExecutions: number;
  /** Claims stop while this many messages are in processing, so a backlog waits in pending, not in Temporal. */
  maxInFlight: number;
  /** How often the publisher looks for transitions to append to the streams (sooner while it has a backlog). */
  publishIntervalMs: number;
  /** The SLA (OUTBOX_SYNC_SLA_SECONDS): messages not completed this long after they were sent are overdue; null or absent: none. */
  slaSeconds?: number | null;
  /** The mapping of entities to target databases, for the metrics' `target` label; null: all to the default. */
  targets?: TargetsMapping | null;
  /**
   * The time claims, leases and backoffs are judged by; undefined (the default) is the outbox database's
   * own clock. Tests pass a clock they advance instead of waiting for a lease or a backoff to pass.
   */
  clock?: () => Date | undefined;
}

export interface DispatcherLogger {
  info(message: string, fields?: object): void;
  warn(message: string, fields?: object): void;
  error(message: string, fields?: object): void;
}

/** What the loop tells whoever listens (tests wait on these instead of sleeping). */
export interface DispatcherSignals {
  /** Messages moved to processing, and by which duty. */
  claimed: [messages: ClaimedMessage[], by: 'dispatch' | 'redrive'];
  /** The SLA's sweep marked these messages overdue. */
  overdue: [messages: OverdueMessage[]];
  /** The reconciler dealt with a message whose lease had ended. */
  reconciled: [event: { messageId: number; execution: number; action: Reconciliation }];
  /** One pass of the loop is over. */
  pass: [summary: { claimed: number; failed: boolean }];
  /** One pass of the publisher is over: what it appended, or that another publisher held the cursor, or that it failed. */
  published: [pass: PublishPass | { failed: Error }];
}

/** What each duty works with. */
export interface Duty {
  pool: pg.Pool;
  client: Client;
  settings: DispatcherSettings;
  starter: Starter;
  logger: DispatcherLogger;
  metrics: PipelineMetrics | null;
  signals: EventEmitter<DispatcherSignals>;
  clock: () => Date | undefined;
}

const NOTIFY_CHANNEL = 'outbox_sync_pending';

export class Dispatcher {
  readonly signals = new EventEmitter<DispatcherSignals>();
  private readonly duty: Duty;
  private running = false;
  private loop: Promise<void> | undefined;
  private listening: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** A notification came while no pass was waiting: the next wait ends at once. */
  private notified = false;
  private listener: pg.Client | undefined;
  private lastMaintenance = 0;
  private publishing: Promise<void> | undefined;
  private wakePublisher: (() => void) | undefined;

  /** `streams`: where the publisher appends; without it (tests of the other duties alone), no publisher runs. */
  constructor(
    private readonly pool: pg.Pool,
    client: Client,
    private readonly settings: DispatcherSettings,
    private readonly logger: DispatcherLogger = console,
    metrics: PipelineMetrics | null = null,
    private readonly streams: StreamsTarget | null = null,
  ) {
    const starter = new Starter(client, settings, logger, metrics);
    this.duty = { pool, client, settings, starter, logger, metrics, signals: this.signals, clock: settings.clock ?? (() => undefined) };
  }

  /**
   * Starts the loops: dispatch as fast as claims fill batches, otherwise wait for a NOTIFY or the poll
   * interval; and publish, every publish interval.
   */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.listening = this.listen();
    this.loop = this.run();
    if (this.streams) this.publishing = this.publishLoop(this.streams);
  }

  /** Stops after the current passes; claimed messages are started before it returns. */
  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    this.wakePublisher?.();
    await Promise.all([this.loop, this.publishing]);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.listening;
  }

  /** One dispatch: see dispatch.ts. Returns how many messages were claimed. */
  dispatchOnce(): Promise<number> {
    return dispatchPending(this.duty);
  }

  /** One redrive: see redrive.ts. Returns how many failed messages were restarted. */
  redriveOnce(): Promise<number> {
    return redriveFailed(this.duty);
  }

  /** One reconciliation: see reconcile.ts. Returns how many messages were restarted. */
  reconcileOnce(): Promise<number> {
    return reconcileExpired(this.duty);
  }

  /** One sweep of the SLA: see overdue.ts. Returns the messages it marked overdue. */
  sweepOverdueOnce(): Promise<OverdueMessage[]> {
    return sweepOverdue(this.duty);
  }

  /** One publisher pass: see publish.ts. Throws when Redis or the outbox fails it (the cursor stays). */
  async publishOnce(limit = PUBLISH_BATCH): Promise<PublishPass> {
    if (!this.streams) throw new Error('this dispatcher has no streams to publish to');
    return publishStreams(this.duty, this.streams, limit);
  }

  /**
   * Publishes every publish interval, at once again after a full batch (a backlog after an outage), and
   * with a doubling pause (to 5 s) while Redis or the outbox fails it: one log line when that begins and
   * one when it ends, not one per pass.
   */
  private async publishLoop(streams: StreamsTarget): Promise<void> {
    const outage = new OutageReport(this.logger, streams.address);
    let pauseMs = this.settings.publishIntervalMs;
    while (this.running) {
      let full = false;
      try {
        const pass = await publishStreams(this.duty, streams);
        outage.succeeded();
        pauseMs = this.settings.publishIntervalMs;
        full = !pass.busy && pass.read === PUBLISH_BATCH && pass.appended === pass.read;
        this.signals.emit('published', pass);
      } catch (err) {
        outage.failed(err);
        pauseMs = Math.min(Math.max(pauseMs * 2, this.settings.publishIntervalMs), 5_000);
        this.signals.emit('published', { failed: err as Error });
      }
      if (!full && this.running) await this.pause(pauseMs);
    }
  }

  private pause(ms: number): Promise<void> {
    return wakeableDelay(ms, (wake) => (this.wakePublisher = wake));
  }

  private async run(): Promise<void> {
    while (this.running) {
      let claimed = 0;
      let failed = false;
      try {
        claimed = await this.dispatchOnce();
        // Sweep, redrive and reconcile at most once per poll interval, however busy dispatching is. The
        // sweep first: it needs only the outbox, so Temporal being down (which fails the reconciler's
        // checks) never keeps it from marking what that outage makes late.
        if (Date.now() - this.lastMaintenance >= this.settings.pollIntervalMs) {
          this.lastMaintenance = Date.now();
          await this.sweepOverdueOnce();
          claimed += await this.redriveOnce();
          await this.reconcileOnce();
        }
      } catch (err) {
        failed = true;
        this.logger.error('dispatcher pass failed; trying again', { error: (err as Error).message });
      }
      this.signals.emit('pass', { claimed, failed });
      if (claimed < this.settings.claimBatchSize) await this.sleep(this.settings.pollIntervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.notified || !this.running) {
      this.notified = false;
      return Promise.resolve();
    }
    return wakeableDelay(ms, (wake) => (this.wake = wake));
  }

  private notify(): void {
    if (this.wake) this.wake();
    else this.notified = true;
  }

  /** LISTEN for inserts so a new message is claimed at once; polling covers any notification missed. */
  private async listen(): Promise<void> {
    while (this.running) {
      // A connection of its own, with the pool's settings: LISTEN holds it for as long as it lives.
      const client = new pg.Client((this.pool as unknown as { options: pg.ClientConfig }).options);
      client.on('error', () => undefined); // reported through the 'end' below
      try {
        await client.connect();
        if (!this.running) {
          await client.end();
          return;
        }
        this.listener = client;
        client.on('notification', () => this.notify());
        await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
        await new Promise<void>((resolve) => client.once('end', resolve));
      } catch (err) {
        if (this.running) this.logger.warn('LISTEN connection failed; polling meanwhile', { error: (err as Error).message });
        await client.end().catch(() => undefined);
      }
      if (this.running) await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Resolves after `ms`, or at once when the function `setWake` is handed is called (it gets undefined again when done). */
function wakeableDelay(ms: number, setWake: (wake: (() => void) | undefined) => void): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      setWake(undefined);
      resolve();
    };
    const timer = setTimeout(done, ms);
    setWake(done);
  });
}
