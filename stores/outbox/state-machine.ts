/**
 * The life of an outbox message, and the only place its status changes. Each transition is one named
 * function and one guarded SQL statement that names the state (or states) it leaves, so a late or
 * duplicated activity can never move a message back.
 *
 *   pending ── claimPending (dispatcher) ──▶ processing ── recordCompleted (activities) ──▶ completed
 *      ▲                                       │    ▲  ↺ renewLease, claimAbandoned (reconciler)
 *      │  recordFailure (activities,           │    │ claimFailedDue (redriver, once the backoff
 *      │  reconciler)                          ▼    │ has passed)
 *      │                                     failed ┘
 *      │                                       │ markDeadExhausted (redriver: out of executions)
 *      │                                       ▼
 *      │                                      dead ◀── recordFailure, on the last execution or a permanent fault
 *      │
 *      └── retryMessages (operator: CLI or outbox page) ◀── dead, failed
 *
 *   completed messages leave only by prune (deleted once old enough).
 *
 * What each status means is declared with the statuses, in statuses.ts (pure, so the outbox page's
 * front end shares it).
 *
 * `executions` counts the message's executions (workflow runs); every outcome is recorded against the
 * execution that holds the claim and no other. Times come from the database's clock (`now()`) unless a
 * caller passes `now` (tests advance a clock of their own instead of waiting for leases and backoffs).
 *
 * The claims into processing share one in-flight cap (claimWithinCap); within it, the redriver's re-runs
 * of failed messages hold at most their share (rerunSlots), so that messages that keep failing cannot
 * take every slot from fresh ones.
 */
import type { Queryable } from '../postgres/queryable';
import { inTransaction } from '../postgres/transaction';
import { filterCondition, type MessageFilter } from './filter';

export { ALL_STATUSES, FailureKind, MessageStatus } from './statuses';
import { FailureKind, MessageStatus } from './statuses';

/** A message a dispatcher, redriver or reconciler has just moved to `processing`: start its workflow. */
export interface ClaimedMessage {
  id: number;
  entity: string;
  key: string;
  /** The execution this claim starts (1 for the first). Outcomes are recorded against it. */
  execution: number;
  createdAt: Date;
}

/** A message as a transition left it (or as it is, when the transition did not apply). */
export interface MessageState {
  id: number;
  entity: string;
  key: string;
  version: string;
  status: MessageStatus;
  executions: number;
  createdAt: Date;
}

/**
 * The result of a transition on one message: it moved, and this is what it holds now; or it did not
 * (another part got there first), and this is what it holds instead (null: the message is gone).
 */
export type Transition = { moved: true; message: MessageState } | { moved: false; current: MessageState | null };

/** When the caller does not say, the database's clock. */
export interface At {
  now?: Date;
}

/** The injected time, as SQL: parameter `param`, or the database's now() when it is null. */
export const NOW = (param: number) => `coalesce($${param}::timestamptz, now())`;

export const CLAIMED_COLUMNS = 'id, entity, entity_key, executions, created_at';

type ClaimedRow = { id: string; entity: string; entity_key: string; executions: number; created_at: Date };

export function toClaimed(row: ClaimedRow): ClaimedMessage {
  return { id: Number(row.id), entity: row.entity, key: row.entity_key, execution: row.executions, createdAt: row.created_at };
}

export interface ClaimOptions extends At {
  limit: number;
  leaseMs: number;
  /**
   * Claims stop where the count of messages in processing would pass this (see claimWithinCap); the
   * redriver's also where re-runs would hold more than their share of it (see rerunSlots).
   */
  maxInFlight?: number;
}

/**
 * How many of `maxInFlight` slots re-runs (the redriver's claims of failed messages) may hold together:
 * half, and at least one. Slots are not taken back once held, and an execution against a target that
 * hangs holds its slot until the step's timeout: without this share, messages that keep failing would
 * come to hold every slot, and fresh messages would wait behind them. Fresh messages may use every free
 * slot; the other half stays theirs.
 */
export function rerunSlots(maxInFlight: number): number {
  return Math.max(1, Math.floor(maxInFlight / 2));
}

/**
 * pending → processing for up to `limit` messages, oldest first (dispatcher), as fresh claims (`rerun`
 * cleared: a message the operator retried starts afresh). SKIP LOCKED lets many dispatchers claim side by
 * side without waiting on or double-claiming each other's rows.
 */
export async function claimPending(db: Queryable, options: ClaimOptions & { workflowIdPrefix: string }): Promise<ClaimedMessage[]> {
  const { limit, leaseMs, maxInFlight, workflowIdPrefix, now } = options;
  // The batch is chosen once (MATERIALIZED): as a subquery joined to the UPDATE, the planner may rescan
  // it for every row, each rescan finding new unlocked rows, and claim far past the limit.
  const rows = await claimWithinCap(db, maxInFlight, (q) =>
    q.query(
      `WITH due AS MATERIALIZED (
         SELECT id FROM outbox_messages WHERE status = 'pending'
          ORDER BY id LIMIT greatest(0, least($1, $4 - (SELECT count(*) FROM outbox_messages WHERE status = 'processing')))
          FOR UPDATE SKIP LOCKED)
       UPDATE outbox_messages m
          SET status = 'processing', rerun = false, executions = m.executions + 1, workflow_id = $3 || m.id,
              lease_ends_at = ${NOW(5)} + $2 * interval '1 millisecond', updated_at = ${NOW(5)}
         FROM due
        WHERE m.id = due.id AND m.status = 'pending'
    RETURNING m.id, m.entity, m.entity_key, m.executions, m.created_at`,
      [limit, leaseMs, workflowIdPrefix, inFlightBound(maxInFlight), now ?? null],
    ),
  );
  return rows.map(toClaimed).sort((a, b) => a.id - b.id);
}

/**
 * failed → processing for failed messages whose backoff has passed and that may still run (redriver), as
 * re-runs (`rerun` set): they stop where the cap would be passed, or where re-runs in processing would
 * hold more than their share of it (rerunSlots), both counted in the same statement under the claim lock.
 */
export async function claimFailedDue(db: Queryable, options: ClaimOptions & { maxExecutions: number }): Promise<ClaimedMessage[]> {
  const { limit, leaseMs, maxInFlight, maxExecutions, now } = options;
  const rerunBound = maxInFlight === undefined ? inFlightBound(undefined) : String(rerunSlots(maxInFlight));
  const rows = await claimWithinCap(db, maxInFlight, (q) =>
    q.query(
      `WITH in_flight AS (
         SELECT count(*) AS total, count(*) FILTER (WHERE rerun) AS reruns FROM outbox_messages WHERE status = 'processing'),
       due AS MATERIALIZED (
         SELECT id FROM outbox_messages
          WHERE status = 'failed' AND next_run_at <= ${NOW(5)} AND executions < $3
            AND last_error_kind IS DISTINCT FROM 'permanent'
          ORDER BY next_run_at
          LIMIT greatest(0, least($1, $4 - (SELECT total FROM in_flight), $6 - (SELECT reruns FROM in_flight)))
          FOR UPDATE SKIP LOCKED)
       UPDATE outbox_messages m
          SET status = 'processing', rerun = true, executions = m.executions + 1,
              lease_ends_at = ${NOW(5)} + $2 * interval '1 millisecond', updated_at = ${NOW(5)}
         FROM due
        WHERE m.id = due.id AND m.status = 'failed'
    RETURNING m.id, m.entity, m.entity_key, m.executions, m.created_at`,
      [limit, leaseMs, maxExecutions, inFlightBound(maxInFlight), now ?? null, rerunBound],
    ),
  );
  return rows.map(toClaimed);
}

/** No cap: a bound the count of messages can never reach (LIMIT takes a bigint). */
function inFlightBound(maxInFlight: number | undefined): string {
  return maxInFlight === undefined ? '9223372036854775807' : String(maxInFlight);
}

/** Any value fits: transactions of the same database share it, other databases have their own. */
const CLAIM_LOCK = 7_260_531_011;

/**
 * Runs a claim under the in-flight cap. Two dispatchers counting `processing` at the same moment would
 * each see room for a full batch; a transaction-scoped advisory lock makes them count one after the
 * other (each statement after the lock sees the other's committed claims), so the cap holds exactly.
 * Without a cap the claim runs as one statement, lock-free.
 */
async function claimWithinCap(db: Queryable, maxInFlight: number | undefined, claim: (q: Queryable) => Promise<{ rows: any[] }>): Promise<ClaimedRow[]> {
  if (maxInFlight === undefined) return (await claim(db)).rows;
  return inTransaction(db, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK]);
    return (await claim(client)).rows;
  });
}

/** The execution of one message that a transition is about. */
export interface ExecutionRef extends At {
  id: number;
  execution: number;
}

/**
 * processing → processing as a new execution, for a message whose workflow ended (or vanished) without
 * recording an outcome (reconciler). Returns the new claim, or null if the message moved on meanwhile.
 * The message keeps its slot and the kind it was claimed as (`rerun` untouched): a run lost to a crash is
 * not a failure, so a fresh message stays fresh, and a re-run still counts in the re-runs' share.
 */
export async function claimAbandoned(db: Queryable, ref: ExecutionRef & { leaseMs: number }): Promise<ClaimedMessage | null> {
  const { rows } = await db.query(
    `UPDATE outbox_messages
        SET executions = executions + 1, lease_ends_at = ${NOW(4)} + $3 * interval '1 millisecond', updated_at = ${NOW(4)}
      WHERE id = $1 AND status = 'processing' AND executions = $2
  RETURNING ${CLAIMED_COLUMNS}`,
    [ref.id, ref.execution, ref.leaseMs, ref.now ?? null],
  );
  return rows[0] ? toClaimed(rows[0]) : null;
}

/**
 * Extends the lease of a message whose workflow still runs (reconciler). False when the execution no
 * longer holds the claim: its outcome was recorded meanwhile, and there is nothing to extend.
 */
export async function renewLease(db: Queryable, ref: ExecutionRef & { leaseMs: number }): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE outbox_messages SET lease_ends_at = ${NOW(4)} + $3 * interval '1 millisecond'
      WHERE id = $1 AND status = 'processing' AND executions = $2`,
    [ref.id, ref.execution, ref.leaseMs, ref.now ?? null],
  );
  return rowCount === 1;
}

const STATE_COLUMNS = 'id, entity, entity_key, version, status, executions, created_at';

function toState(row: Record<string, any>): MessageState {
  return {
    id: Number(row.id),
    entity: row.entity,
    key: row.entity_key,
    version: String(row.version),
    status: row.status,
    executions: row.executions,
    createdAt: row.created_at,
  };
}

/**
 * Runs a guarded UPDATE of one message and, in the same statement, reads what the message holds when the
 * guard did not match. The read locks the row (FOR SHARE), so under a concurrent transition it waits and
 * sees the committed result, never the state from before it.
 */
async function transitionOne(db: Queryable, update: string, params: unknown[]): Promise<Transition> {
  const { rows } = await db.query(
    `WITH moved AS (${update} RETURNING ${STATE_COLUMNS})
     SELECT true AS moved, * FROM moved
     UNION ALL
     SELECT false, current.* FROM (
       SELECT ${STATE_COLUMNS} FROM outbox_messages WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM moved) FOR SHARE) current`,
    params,
  );
  const row = rows[0];
  if (!row) return { moved: false, current: null };
  return row.moved ? { moved: true, message: toState(row) } : { moved: false, current: toState(row) };
}

/** processing → completed, for the execution that holds the claim (activities). */
export function recordCompleted(db: Queryable, ref: ExecutionRef): Promise<Transition> {
  return transitionOne(
    db,
    `UPDATE outbox_messages
        SET status = 'completed', last_error = NULL, last_error_kind = NULL, lease_ends_at = NULL,
            completed_at = ${NOW(3)}, updated_at = ${NOW(3)}
      WHERE id = $1 AND status = 'processing' AND executions = $2`,
    [ref.id, ref.execution, ref.now ?? null],
  );
}

export interface Failure {
  error: string;
  kind: FailureKind;
  /** When the redriver may run it again, if it is not dead. */
  retryInMs: number;
  /** Executions a message may have: the one that reaches it makes the message dead. */
  maxExecutions: number;
}

/**
 * processing → failed, or dead when this was the last execution or the fault is permanent (activities;
 * the reconciler, for a workflow that ended without an outcome). One statement either way.
 */
export function recordFailure(db: Queryable, ref: ExecutionRef, failure: Failure): Promise<Transition> {
  return transitionOne(
    db,
    `UPDATE outbox_messages
        SET status = CASE WHEN $4 = 'permanent' OR executions >= $6 THEN 'dead' ELSE 'failed' END,
            last_error = $3, last_error_kind = $4, lease_ends_at = NULL,
            next_run_at = ${NOW(7)} + $5 * interval '1 millisecond', updated_at = ${NOW(7)}
      WHERE id = $1 AND status = 'processing' AND executions = $2`,
    [ref.id, ref.execution, failure.error, failure.kind, failure.retryInMs, failure.maxExecutions, ref.now ?? null],
  );
}

/**
 * failed → dead for messages out of executions or failed by a permanent fault (redriver): those that
 * failed before the maximum was lowered, or whose failure was recorded by an older version.
 */
export async function markDeadExhausted(db: Queryable, options: At & { maxExecutions: number }): Promise<MessageState[]> {
  const { rows } = await db.query(
    `UPDATE outbox_messages SET status = 'dead', updated_at = ${NOW(2)}
      WHERE status = 'failed' AND (executions >= $1 OR last_error_kind = 'permanent')
  RETURNING ${STATE_COLUMNS}`,
    [options.maxExecutions, options.now ?? null],
  );
  return rows.map(toState);
}

/** Reports how far a bulk operation has come: done so far, out of the total it counted first. */
export type Progress = (done: number, total: number) => void;

/** Rows per statement in bulk operations: short transactions that do not hold many locks for long. */
export const BULK_BATCH = 5_000;

/**
 * What sending a message back to pending (an operator's retry, verify --repair) sets besides its status:
 * its SLA counts from now, and it may become overdue (and be notified) again (overdue.ts).
 */
const RESENT = 'resent_at = now(), overdue_at = NULL';

/** Which messages a retry is about: these ids, every message of a status, or those a filter matches. */
export type RetrySelection = { ids: number[] } | { status: 'dead' | 'failed' } | { filter: MessageFilter };

export interface RetryOptions {
  /** Who asks (`cli`, `ui:<name>`): recorded in each message's status history. */
  actor?: string;
  onProgress?: Progress;
}

/**
 * dead or failed → pending, the operator's retry: the message runs again with a fresh count of executions.
 * A retry by status or filter walks the ids in batches, each message at most once (one that fails again
 * meanwhile is not picked up a second time); only failed and dead messages move, whatever the filter says.
 * Each batch is a transaction that names the actor, which the history trigger reads. Returns the ids moved.
 */
export async function retryMessages(db: Queryable, select: RetrySelection, options: RetryOptions = {}): Promise<number[]> {
  const { actor = null, onProgress = () => undefined } = options;
  const moved: number[] = [];
  const retry = (where: string, params: unknown[]) =>
    inTransaction(db, async (client) => {
      if (actor !== null) await client.query(`SELECT set_config('outbox_sync.actor', $1, true)`, [actor]);
      const { rows } = await client.query<{ id: string }>(
        `UPDATE outbox_messages
            SET status = 'pending', executions = 0, next_run_at = now(), updated_at = now(), ${RESENT}
          WHERE ${where} AND status IN ('dead', 'failed')
      RETURNING id`,
        params,
      );
      return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    });
  if ('ids' in select) {
    moved.push(...(await retry('id = ANY($1::bigint[])', [select.ids])));
  } else {
    const params: unknown[] = [];
    const filter = 'filter' in select ? select.filter : { statuses: [select.status] };
    const where = `${filterCondition(filter, params)} AND status IN ('dead', 'failed')`;
    const total = await countWhere(db, where, params);
    let after = 0;
    for (;;) {
      const batch = await retry(
        `id IN (SELECT id FROM outbox_messages WHERE ${where} AND id > $${params.length + 1} ORDER BY id LIMIT ${BULK_BATCH})`,
        [...params, after],
      );
      if (batch.length === 0) break;
      moved.push(...batch);
      after = batch[batch.length - 1]!;
      onProgress(moved.length, Math.max(total, moved.length));
    }
  }
  if (moved.length > 0) await db.query(`SELECT pg_notify('outbox_sync_pending', '')`);
  return moved;
}

/**
 * completed → pending for messages `verify --repair` found the target does not hold, flagged so that
 * their next write replaces an equal version; the status history records `repair` as who asked.
 * Returns the ids moved (a message no longer completed is left alone).
 */
export async function repairMessages(db: Queryable, ids: readonly number[]): Promise<number[]> {
  const moved: number[] = [];
  for (let at = 0; at < ids.length; at += BULK_BATCH) {
    const batch = await inTransaction(db, async (client) => {
      await client.query(`SELECT set_config('outbox_sync.actor', 'repair', true)`);
      const { rows } = await client.query<{ id: string }>(
        `UPDATE outbox_messages
            SET status = 'pending', overwrite = true, executions = 0, next_run_at = now(), updated_at = now(), ${RESENT}
          WHERE id = ANY($1::bigint[]) AND status = 'completed'
      RETURNING id`,
        [ids.slice(at, at + BULK_BATCH)],
      );
      return rows.map((r) => Number(r.id));
    });
    moved.push(...batch);
  }
  if (moved.length > 0) await db.query(`SELECT pg_notify('outbox_sync_pending', '')`);
  return moved.sort((a, b) => a - b);
}

export async function countWhere(db: Queryable, where: string, params: unknown[]): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox_messages WHERE ${where}`, params);
  return Number(rows[0]!.n);
}
