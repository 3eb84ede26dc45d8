/**
 * Reads of the outbox, and prune. Status changes live in state-machine.ts, and nowhere else.
 */
import pg from 'pg';
import { BULK_BATCH, CLAIMED_COLUMNS, NOW, countWhere, toClaimed, type ClaimedMessage, type FailureKind, type MessageStatus, type Progress, type At } from './state-machine';
import type { Op } from './validate';
import type { Queryable } from '../postgres/queryable';
import { STREAMS_CAUGHT_UP } from './stream-cursor';
import { overdueCondition } from './overdue';

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
  /** Executions so far (workflow runs); 0 until first claimed. */
  executions: number;
  lastError: string | null;
  lastErrorKind: FailureKind | null;
  workflowId: string | null;
  /** When a pending or failed message may next be claimed. */
  nextRunAt: Date;
  /** While processing: when the reconciler may check on its workflow. */
  leaseEndsAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
  /** When it passed its SLA (overdue.ts), once for each time it was sent; null if it has not. */
  overdueAt: Date | null;
}

/** Processing messages whose lease has ended: the reconciler checks each one's workflow. */
export async function findLeaseExpired(db: Queryable, options: At & { limit: number }): Promise<ClaimedMessage[]> {
  const { rows } = await db.query(
    `SELECT ${CLAIMED_COLUMNS} FROM outbox_messages
      WHERE status = 'processing' AND lease_ends_at <= ${NOW(2)}
      ORDER BY lease_ends_at LIMIT $1`,
    [options.limit, options.now ?? null],
  );
  return rows.map(toClaimed);
}

export async function readMessage(db: Queryable, id: number): Promise<OutboxMessage | null> {
  const { rows } = await db.query('SELECT * FROM outbox_messages WHERE id = $1', [id]);
  return rows[0] ? toMessage(rows[0]) : null;
}

/**
 * The message with its data also as the JSON text the outbox holds, which keeps every number exact (the
 * parsed `data` has been through a double); the activities pass that text on to the cache and the target.
 * `overwrite` is the pipeline's own flag, set by `verify --repair`: the next write may replace an equal
 * version in the target.
 */
export async function readMessageWithText(db: Queryable, id: number): Promise<(OutboxMessage & { dataText: string | null; overwrite: boolean }) | null> {
  // The jsonb column arrives as its text, parsed here once: the same work as a plain read, and the text kept.
  const { rows } = await db.query({ text: 'SELECT * FROM outbox_messages WHERE id = $1', values: [id], types: JSONB_AS_TEXT });
  const row = rows[0];
  if (!row) return null;
  const dataText: string | null = row.data;
  return { ...toMessage({ ...row, data: dataText === null ? null : JSON.parse(dataText) }), dataText, overwrite: row.overwrite === true };
}

const JSONB_OID = 3802;
const JSONB_AS_TEXT = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === JSONB_OID ? (text: string) => text : pg.types.getTypeParser(oid, format))) as pg.CustomTypesConfig['getTypeParser'],
};

export async function readMessages(db: Queryable, ids: readonly number[]): Promise<OutboxMessage[]> {
  const { rows } = await db.query('SELECT * FROM outbox_messages WHERE id = ANY($1::bigint[]) ORDER BY id', [ids]);
  return rows.map(toMessage);
}

export interface OutboxStatus {
  counts: Record<MessageStatus, number>;
  oldestPendingSeconds: number;
  /** Messages past the SLA and not completed (pending, processing or failed); 0 without an SLA. */
  overdue: number;
  /** The SLA the count was made with (OUTBOX_SYNC_SLA_SECONDS); null: none. */
  slaSeconds: number | null;
}

export interface StatusOptions extends At {
  /** The SLA, OUTBOX_SYNC_SLA_SECONDS; null: none, and nothing is overdue. */
  slaSeconds: number | null;
}

/**
 * Counts per status, the age of the oldest pending message (0 when none is pending), and how many
 * messages are overdue (overdue.ts), counted in the same scan as the statuses.
 */
export async function readStatus(db: Queryable, { slaSeconds, now }: StatusOptions): Promise<OutboxStatus> {
  const counts = { pending: 0, processing: 0, completed: 0, failed: 0, dead: 0 } as Record<MessageStatus, number>;
  const { rows } = await db.query<{ status: MessageStatus; n: string; overdue: string }>(
    `SELECT status, count(*) AS n, count(*) FILTER (WHERE ${overdueCondition('$1', NOW(2))}) AS overdue
       FROM outbox_messages GROUP BY status`,
    [slaSeconds, now ?? null],
  );
  let overdue = 0;
  for (const row of rows) {
    counts[row.status] = Number(row.n);
    overdue += Number(row.overdue);
  }
  const oldest = await db.query<{ age: number | null }>(
    `SELECT extract(epoch FROM now() - min(created_at))::float8 AS age FROM outbox_messages WHERE status = 'pending'`,
  );
  return { counts, oldestPendingSeconds: Math.max(0, Math.round(oldest.rows[0]?.age ?? 0)), overdue, slaSeconds };
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
    executions: row.executions,
    lastError: row.last_error,
    lastErrorKind: row.last_error_kind,
    workflowId: row.workflow_id,
    nextRunAt: row.next_run_at,
    leaseEndsAt: row.lease_ends_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    completedAt: row.completed_at,
    overdueAt: row.overdue_at,
  };
}

/**
 * Deletes completed messages finished more than `olderThanMs` ago, in batches; returns how many. A message
 * whose completion is not on the success stream yet (Redis was down) stays until it is: its history, which
 * the streams are written from, goes with it.
 */
export async function pruneCompleted(db: Queryable, olderThanMs: number, onProgress: Progress = () => undefined): Promise<number> {
  // One cutoff for the whole run, so the total counted first is what the batches delete.
  const { rows } = await db.query<{ cutoff: Date }>(`SELECT now() - $1 * interval '1 millisecond' AS cutoff`, [olderThanMs]);
  const cutoff = rows[0]!.cutoff;
  const prunable = `status = 'completed' AND completed_at < $1 AND ${STREAMS_CAUGHT_UP}`;
  const total = await countWhere(db, prunable, [cutoff]);
  let deleted = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `DELETE FROM outbox_messages WHERE id IN (
         SELECT id FROM outbox_messages WHERE ${prunable} ORDER BY id LIMIT ${BULK_BATCH})`,
      [cutoff],
    );
    if (!rowCount) break;
    deleted += rowCount;
    onProgress(deleted, Math.max(total, deleted));
  }
  return deleted;
}

/**
 * A message as `inspect --json`, the HTTP API and the outbox page show it. They keep the names clients
 * already read: `attempts` for the executions, `availableAt` for the next run or, while processing, the
 * lease end.
 */
export function publicMessage(message: OutboxMessage) {
  const { executions, nextRunAt, leaseEndsAt, ...fields } = message;
  return { ...fields, attempts: executions, availableAt: leaseEndsAt ?? nextRunAt };
}
