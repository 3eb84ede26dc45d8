/**
 * The dispatcher turns claimed messages into workflow executions. One process runs three duties:
 * - dispatch: claim pending messages (pending → processing) and start one workflow each;
 * - redrive: run failed messages again once their backoff has passed (failed → processing), and declare
 *   dead those out of executions;
 * - reconcile: for a message left in processing past its lease, ask Temporal whether its workflow runs; if
 *   it does not (the dispatcher died between claim and start, an operator terminated it, Temporal lost
 *   it), start a new execution.
 * Many dispatchers may run at once: claims use SKIP LOCKED, and a start is idempotent by workflow id
 * (USE_EXISTING while a run is open), so a message never has two live executions.
 */
import { Client, WorkflowNotFoundError } from '@temporalio/client';
import pg from 'pg';
import { workflowIdFor } from '../stores/outbox/state-machine';
import type { PipelineMetrics } from '../observability/metrics';
import {
  claimAbandoned,
  claimFailedDue,
  claimPending,
  findLeaseExpired,
  markDead,
  markDeadExhausted,
  markFailed,
  renewLease,
  type ClaimedMessage,
} from '../stores/outbox/messages';
import { searchAttributesFor } from '../temporal/search-attributes';
import type { StepRetrySettings, syncMessage } from '../workflows/sync-message';

export interface DispatcherSettings {
  taskQueue: string;
  workflowIdPrefix: string;
  claimBatchSize: number;
  pollIntervalMs: number;
  leaseMs: number;
  maxExecutions: number;
  /** Claims stop while this many messages are in processing, so a backlog waits in pending, not in Temporal. */
  maxInFlight: number;
  stepRetry: StepRetrySettings;
  /** Entity and key as search attributes (default); off when payloads are encrypted. */
  entityKeySearchAttributes?: boolean;
  /**
   * Ask the server to hand each new execution's first workflow task straight back to a worker in this
   * process (eager start), skipping the task queue. Only where the client shares a NativeConnection with a
   * worker on the same task queue, as in `dev`.
   */
  eagerStart?: boolean;
}

export interface DispatcherLogger {
  info(message: string, fields?: object): void;
  warn(message: string, fields?: object): void;
  error(message: string, fields?: object): void;
}

const NOTIFY_CHANNEL = 'outbox_sync_pending';

/** Workflows the reconciler asks Temporal about at once. */
const RECONCILE_CONCURRENCY = 16;

export class Dispatcher {
  private running = false;
  private loop: Promise<void> | undefined;
  private listening: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** A notification came while no pass was waiting: the next wait ends at once. */
  private notified = false;
  private listener: pg.Client | undefined;
  private lastMaintenance = 0;
  /**
   * Claimed messages whose start failed (Temporal unreachable): started again, with the same execution
   * number, before anything new is claimed. Should this process die first, the reconciler has them.
   */
  private unstarted: ClaimedMessage[] = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly client: Client,
    private readonly settings: DispatcherSettings,
    private readonly logger: DispatcherLogger = console,
    private readonly metrics: PipelineMetrics | null = null,
  ) {}

  /** Starts the loop: dispatch as fast as claims fill batches, otherwise wait for a NOTIFY or the poll interval. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.listening = this.listen();
    this.loop = this.run();
  }

  /** Stops after the current pass; claimed messages are started before it returns. */
  async stop(): Promise<void> {
    this.running = false;
    this.notify();
    await this.loop;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
    await this.listening;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let claimed = 0;
      try {
        claimed = await this.dispatchOnce();
        // Redrive and reconcile at most once per poll interval, however busy dispatching is.
        if (Date.now() - this.lastMaintenance >= this.settings.pollIntervalMs) {
          this.lastMaintenance = Date.now();
          claimed += await this.redriveOnce();
          await this.reconcileOnce();
        }
      } catch (err) {
        this.logger.error('dispatcher pass failed; trying again', { error: (err as Error).message });
      }
      if (claimed < this.settings.claimBatchSize) await this.sleep(this.settings.pollIntervalMs);
    }
  }

  /**
   * Starts what an earlier pass could not, then claims one batch of pending messages and starts their
   * workflows. Returns how many were claimed; claims nothing while Temporal refuses starts, so an outage
   * does not pull the whole backlog into processing.
   */
  async dispatchOnce(): Promise<number> {
    if (this.unstarted.length > 0) {
      const retry = this.unstarted;
      this.unstarted = [];
      await this.startAll(retry);
      if (this.unstarted.length > 0) return 0;
    }
    const claimed = await claimPending(
      this.pool,
      this.settings.claimBatchSize,
      this.settings.leaseMs,
      this.settings.workflowIdPrefix,
      this.settings.maxInFlight,
    );
    await this.startAll(claimed);
    if (this.metrics) {
      const now = Date.now();
      const waiting = new Set(this.unstarted);
      for (const m of claimed) if (!waiting.has(m)) this.metrics.startDelay.observe((now - m.createdAt.getTime()) / 1000);
    }
    return this.unstarted.length > 0 ? 0 : claimed.length;
  }

  /** Declares exhausted failed messages dead and runs due ones again; returns how many were restarted. */
  async redriveOnce(): Promise<number> {
    const dead = await markDeadExhausted(this.pool, this.settings.maxExecutions);
    if (dead > 0) {
      this.logger.warn('failed messages declared dead', { count: dead });
      this.metrics?.outcomes.inc({ status: 'dead' }, dead);
    }
    if (this.unstarted.length > 0) return 0;
    const due = await claimFailedDue(
      this.pool,
      this.settings.claimBatchSize,
      this.settings.leaseMs,
      this.settings.maxExecutions,
      this.settings.maxInFlight,
    );
    await this.startAll(due);
    if (due.length > 0) this.metrics?.reexecutions.inc({ reason: 'redrive' }, due.length);
    return due.length;
  }

  /**
   * Checks messages whose lease expired; restarts those without a running workflow. Returns how many.
   * A backlog deep enough to outlast the lease makes every pass check a full batch; the checks go to
   * Temporal a few at a time, so that a pass does not hold up dispatching for a round trip per message.
   */
  async reconcileOnce(): Promise<number> {
    const waiting = new Set(this.unstarted.map((m) => m.id));
    // Messages this process is still starting are not stuck.
    const expired = (await findLeaseExpired(this.pool, this.settings.claimBatchSize)).filter((m) => !waiting.has(m.id));
    let restarted = 0;
    for (let i = 0; i < expired.length; i += RECONCILE_CONCURRENCY) {
      const results = await Promise.all(expired.slice(i, i + RECONCILE_CONCURRENCY).map((m) => this.reconcileMessage(m)));
      restarted += results.filter(Boolean).length;
    }
    return restarted;
  }

  /** Renews the lease of a message whose workflow runs; otherwise starts it again (or declares it dead). */
  private async reconcileMessage(message: ClaimedMessage): Promise<boolean> {
    let running: boolean;
    try {
      const description = await this.client.workflow.getHandle(workflowIdFor(message.id, this.settings.workflowIdPrefix)).describe();
      running = description.status.name === 'RUNNING';
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      running = false;
    }
    if (running) {
      await renewLease(this.pool, message.id, message.attempt, this.settings.leaseMs);
      return false;
    }
    if (message.attempt >= this.settings.maxExecutions) {
      const error = 'workflow ended without recording an outcome, and no executions are left';
      if (await markFailed(this.pool, message.id, message.attempt, { error, kind: 'transient', retryInMs: 0 })) {
        await markDead(this.pool, message.id, message.attempt);
        this.logger.warn('message declared dead', { messageId: message.id, error });
        this.metrics?.outcomes.inc({ status: 'dead' });
      }
      return false;
    }
    const claim = await claimAbandoned(this.pool, message.id, message.attempt, this.settings.leaseMs);
    if (!claim) return false; // its outcome was recorded meanwhile
    this.logger.warn('restarting a message whose workflow is gone', { messageId: message.id, attempt: claim.attempt });
    await this.startAll([claim]);
    this.metrics?.reexecutions.inc({ reason: 'reconcile' });
    return true;
  }

  /** Starts a workflow per claimed message; those that fail wait in `unstarted` for the next pass. */
  private async startAll(messages: ClaimedMessage[]): Promise<void> {
    const results = await Promise.allSettled(messages.map((m) => startExecution(this.client, m, this.settings)));
    const failed = messages.filter((_, i) => results[i]!.status === 'rejected');
    if (failed.length === 0) return;
    this.unstarted.push(...failed);
    this.metrics?.startFailures.inc(failed.length);
    const reason = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
    this.logger.error('workflow starts failed; they are tried again before anything new is claimed', {
      count: failed.length,
      error: (reason as Error)?.message ?? String(reason),
    });
  }

  private sleep(ms: number): Promise<void> {
    if (this.notified || !this.running) {
      this.notified = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
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

/** Starts (or finds running) the workflow of one claimed message. */
export async function startExecution(
  client: Client,
  message: Pick<ClaimedMessage, 'id' | 'entity' | 'key' | 'attempt'>,
  settings: Pick<DispatcherSettings, 'taskQueue' | 'workflowIdPrefix' | 'stepRetry' | 'entityKeySearchAttributes' | 'eagerStart'>,
): Promise<string> {
  const handle = await client.workflow.start<typeof syncMessage>('syncMessage', {
    taskQueue: settings.taskQueue,
    workflowId: workflowIdFor(message.id, settings.workflowIdPrefix),
    args: [{ messageId: message.id, attempt: message.attempt, retry: settings.stepRetry }],
    // One live execution per message: a second start while one runs returns that one. Once it has
    // closed, a start (a redrive or a rescue) opens a new run under the same id.
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    typedSearchAttributes: searchAttributesFor(message, { entityKey: settings.entityKeySearchAttributes ?? true }),
    ...(settings.eagerStart ? { requestEagerStart: true } : {}),
  });
  return handle.firstExecutionRunId;
}
