/**
 * The outbox's transitions and reads, one named function per operation. Each transition is a single
 * guarded statement that names the state it leaves (see message/status.ts); "0 rows" means another
 * process got there first, and callers treat it as such.
 */
import { MessageStatus } from './state-machine';
import type { Op } from './validate';
import type { Queryable } from './enqueue';
import { inTransaction } from '../postgres/transaction';
import { filterCondition, type MessageFilter } from './filter';

/** A message a dispatcher, redriver or reconciler has just moved to `processing`: start its workflow. */
export interface ClaimedMessage {
  id: number;
  entity: string;
  key: string;
  /** The execution number this claim starts (1 for the first). Outcomes are recorded against it. */
  attempt: number;
  createdAt: Date;
}

/** A stored message, as the activities and `inspect` read it. */
export interface OutboxMessage {
  id: number;
  source: string | null;
  entity: string;
  key: string;
  op: Op | string;
  version: string;
  data: unknown;
  idempotencyKey: string | null;
  status: MessageStatus;
  attempts: number;
  lastError: string | null;
  lastErrorKind: 'transient' | 'permanent' | null;
  workflowId: string | null;
  availableAt: Date;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

const CLAIMED_COLUMNS = 'id, entity, entity_key, attempts, created_at';

function toClaimed(row: { id: string; entity: string; entity_key: string; attempts: number; created_at: Date }): ClaimedMessage {
  return { id: Number(row.id), entity: row.entity, key: row.entity_key, attempt: row.attempts, createdAt: row.created_at };
}

/**
 * pending → processing for up to `limit` messages, oldest first. SKIP LOCKED lets many dispatchers claim
 * side by side without waiting on or double-claiming each other's rows. The lease says when the
 * reconciler may check on the message if no outcome has been recorded by then. With `maxInFlight`, the
 * claim stops where the count of messages in processing would pass it (see claimWithinCap).
 */
export async function claimPending(
  db: Queryable,
  limit: number,
  leaseMs: number,
  workflowIdPrefix: string,
  maxInFlight?: number,
): Promise<ClaimedMessage[]> {
  // The batch is chosen once (MATERIALIZED): as a subquery joined to the UPDATE, the planner may rescan
  // it for every row, each rescan finding new unlocked rows, and claim far past the limit.
  const rows = await claimWithinCap(db, maxInFlight, (q) =>
    q.query(
      `WITH due AS MATERIALIZED (
         SELECT id FROM outbox_messages WHERE status = 'pending'
          ORDER BY id LIMIT greatest(0, least($1, $4 - (SELECT count(*) FROM outbox_messages WHERE status = 'processing')))
          FOR UPDATE SKIP LOCKED)
       UPDATE outbox_messages m
          SET status = 'processing', attempts = m.attempts + 1, workflow_id = $3 || m.id,
              available_at = now() + $2 * interval '1 millisecond', updated_at = now()
         FROM due
        WHERE m.id = due.id AND m.status = 'pending'
    RETURNING m.id, m.entity, m.entity_key, m.attempts, m.created_at`,
      [limit, leaseMs, workflowIdPrefix, inFlightBound(maxInFlight)],
    ),
  );
  return rows.map(toClaimed).sort((a, b) => a.id - b.id);
}

/** failed → processing for failed messages whose backoff has passed and that may still run again. */
export async function claimFailedDue(
  db: Queryable,
  limit: number,
  leaseMs: number,
  maxExecutions: number,
  maxInFlight?: number,
): Promise<ClaimedMessage[]> {
  const rows = await claimWithinCap(db, maxInFlight, (q) =>
    q.query(
      `WITH due AS MATERIALIZED (
         SELECT id FROM outbox_messages
          WHERE status = 'failed' AND available_at <= now() AND attempts < $3
            AND last_error_kind IS DISTINCT FROM 'permanent'
          ORDER BY available_at
          LIMIT greatest(0, least($1, $4 - (SELECT count(*) FROM outbox_messages WHERE status = 'processing')))
          FOR UPDATE SKIP LOCKED)
       UPDATE outbox_messages m
          SET status = 'processing', attempts = m.attempts + 1,
              available_at = now() + $2 * interval '1 millisecond', updated_at = now()
         FROM due
        WHERE m.id = due.id AND m.status = 'failed'
    RETURNING m.id, m.entity, m.entity_key, m.attempts, m.created_at`,
      [limit, leaseMs, maxExecutions, inFlightBound(maxInFlight)],
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
async function claimWithinCap(
  db: Queryable,
  maxInFlight: number | undefined,
  claim: (q: Queryable) => Promise<{ rows: any[] }>,
): Promise<{ id: string; entity: string; entity_key: string; attempts: number; created_at: Date }[]> {
  if (maxInFlight === undefined) return (await claim(db)).rows;
  return inTransaction(db, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK]);
    return (await claim(client)).rows;
  });
}

/** failed → dead for messages out of executions or failed by a permanent fault. Returns how many. */
export async function markDeadExhausted(db: Queryable, maxExecutions: number): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE outbox_messages SET status = 'dead', updated_at = now()
      WHERE status = 'failed' AND (attempts >= $1 OR last_error_kind = 'permanent')`,
    [maxExecutions],
  );
  return rowCount ?? 0;
}

/** Processing messages whose lease has ended: the reconciler checks each one's workflow. */
export async function findLeaseExpired(db: Queryable, limit: number): Promise<ClaimedMessage[]> {
  const { rows } = await db.query(
    `SELECT ${CLAIMED_COLUMNS} FROM outbox_messages
      WHERE status = 'processing' AND available_at <= now()
      ORDER BY available_at LIMIT $1`,
    [limit],
  );
  return rows.map(toClaimed);
}

/** Extends the lease of a message whose workflow is still running. */
export async function renewLease(db: Queryable, id: number, attempt: number, leaseMs: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE outbox_messages SET available_at = now() + $3 * interval '1 millisecond'
      WHERE id = $1 AND status = 'processing' AND attempts = $2`,
    [id, attempt, leaseMs],
  );
  return rowCount === 1;
}

/**
 * processing → processing as a new execution, for a message whose workflow ended (or vanished) without
 * recording an outcome. Returns the new claim, or null if the message moved on meanwhile.
 */
export async function claimAbandoned(db: Queryable, id: number, attempt: number, leaseMs: number): Promise<ClaimedMessage | null> {
  const { rows } = await db.query(
    `UPDATE outbox_messages
        SET attempts = attempts + 1, available_at = now() + $3 * interval '1 millisecond', updated_at = now()
      WHERE id = $1 AND status = 'processing' AND attempts = $2
  RETURNING ${CLAIMED_COLUMNS}`,
    [id, attempt, leaseMs],
  );
  return rows[0] ? toClaimed(rows[0]) : null;
}

/** A message as a transition left it: enough to say which record an outcome notification is about. */
export interface TransitionedMessage {
  id: number;
  entity: string;
  key: string;
  version: string;
  status: MessageStatus;
  attempts: number;
  createdAt: Date;
}

const TRANSITIONED_COLUMNS = 'id, entity, entity_key, version, status, attempts, created_at';

function toTransitioned(row: Record<string, any> | undefined): TransitionedMessage | null {
  if (!row) return null;
  return {
    id: Number(row.id),
    entity: row.entity,
    key: row.entity_key,
    version: String(row.version),
    status: row.status,
    attempts: row.attempts,
    createdAt: row.created_at,
  };
}

/** processing → completed, for the execution that holds the claim; null if it no longer does. */
export async function markCompleted(db: Queryable, id: number, attempt: number): Promise<TransitionedMessage | null> {
  const { rows } = await db.query(
    `UPDATE outbox_messages
        SET status = 'completed', last_error = NULL, last_error_kind = NULL, completed_at = now(), updated_at = now()
      WHERE id = $1 AND status = 'processing' AND attempts = $2
  RETURNING ${TRANSITIONED_COLUMNS}`,
    [id, attempt],
  );
  return toTransitioned(rows[0]);
}

/** processing → failed, with the reason and when the redriver may run it again; null if not claimed. */
export async function markFailed(
  db: Queryable,
  id: number,
  attempt: number,
  failure: { error: string; kind: 'transient' | 'permanent'; retryInMs: number },
): Promise<TransitionedMessage | null> {
  const { rows } = await db.query(
    `UPDATE outbox_messages
        SET status = 'failed', last_error = $3, last_error_kind = $4,
            available_at = now() + $5 * interval '1 millisecond', updated_at = now()
      WHERE id = $1 AND status = 'processing' AND attempts = $2
  RETURNING ${TRANSITIONED_COLUMNS}`,
    [id, attempt, failure.error, failure.kind, failure.retryInMs],
  );
  return toTransitioned(rows[0]);
}

/** failed → dead for one message, right after the execution that exhausted it. */
export async function markDead(db: Queryable, id: number, attempt: number): Promise<TransitionedMessage | null> {
  const { rows } = await db.query(
    `UPDATE outbox_messages SET status = 'dead', updated_at = now()
      WHERE id = $1 AND status = 'failed' AND attempts = $2
  RETURNING ${TRANSITIONED_COLUMNS}`,
    [id, attempt],
  );
  return toTransitioned(rows[0]);
}

/** Reports how far a bulk operation has come: done so far, out of the total it counted first. */
export type Progress = (done: number, total: number) => void;

/** Rows per statement in bulk operations: short transactions that do not hold many locks for long. */
const BULK_BATCH = 5_000;

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
            SET status = 'pending', attempts = 0, available_at = now(), updated_at = now()
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

async function countWhere(db: Queryable, where: string, params: unknown[]): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox_messages WHERE ${where}`, params);
  return Number(rows[0]!.n);
}

export async function readMessage(db: Queryable, id: number): Promise<OutboxMessage | null> {
  const { rows } = await db.query('SELECT * FROM outbox_messages WHERE id = $1', [id]);
  return rows[0] ? toMessage(rows[0]) : null;
}

export async function readMessages(db: Queryable, ids: readonly number[]): Promise<OutboxMessage[]> {
  const { rows } = await db.query('SELECT * FROM outbox_messages WHERE id = ANY($1::bigint[]) ORDER BY id', [ids]);
  return rows.map(toMessage);
}

export interface OutboxStatus {
  counts: Record<MessageStatus, number>;
  oldestPendingSeconds: number;
}

/** Counts per status and the age of the oldest pending message (0 when none is pending). */
export async function readStatus(db: Queryable): Promise<OutboxStatus> {
  const counts = { pending: 0, processing: 0, completed: 0, failed: 0, dead: 0 } as Record<MessageStatus, number>;
  const { rows } = await db.query<{ status: MessageStatus; n: string }>(
    'SELECT status, count(*) AS n FROM outbox_messages GROUP BY status',
  );
  for (const row of rows) counts[row.status] = Number(row.n);
  const oldest = await db.query<{ age: number | null }>(
    `SELECT extract(epoch FROM now() - min(created_at))::float8 AS age FROM outbox_messages WHERE status = 'pending'`,
  );
  return { counts, oldestPendingSeconds: Math.max(0, Math.round(oldest.rows[0]?.age ?? 0)) };
}

function toMessage(row: Record<string, any>): OutboxMessage {
  return {
    id: Number(row.id),
    source: row.source,
    entity: row.entity,
    key: row.entity_key,
    op: row.op,
    version: String(row.version),
    data: row.data,
    idempotencyKey: row.idempotency_key,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    lastErrorKind: row.last_error_kind,
    workflowId: row.workflow_id,
    availableAt: row.available_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    completedAt: row.completed_at,
  };
}

/** Deletes completed messages finished more than `olderThanMs` ago, in batches; returns how many. */
export async function pruneCompleted(db: Queryable, olderThanMs: number, onProgress: Progress = () => undefined): Promise<number> {
  // One cutoff for the whole run, so the total counted first is what the batches delete.
  const { rows } = await db.query<{ cutoff: Date }>(`SELECT now() - $1 * interval '1 millisecond' AS cutoff`, [olderThanMs]);
  const cutoff = rows[0]!.cutoff;
  const total = await countWhere(db, `status = 'completed' AND completed_at < $1`, [cutoff]);
  let deleted = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `DELETE FROM outbox_messages WHERE id IN (
         SELECT id FROM outbox_messages WHERE status = 'completed' AND completed_at < $1 ORDER BY id LIMIT ${BULK_BATCH})`,
      [cutoff],
    );
    if (!rowCount) break;
    deleted += rowCount;
    onProgress(deleted, Math.max(total, deleted));
  }
  return deleted;
}
