/**
 * The SLA (OUTBOX_SYNC_SLA_SECONDS): a message still pending, processing or failed that long after it was
 * sent is overdue. It was sent when it was created, or when an operator's retry or `verify --repair` last
 * sent it back to pending (`resent_at`, set by retryMessages and repairMessages): a message brought back
 * after days is not late the moment it is brought back. Completed messages are never overdue; dead ones
 * are not counted either, since they have a notification of their own and nothing runs them until an
 * operator does.
 *
 * Overdue is not a status: the message keeps its own, and its workflow (if any) goes on. Two things
 * follow from the definition. The count (readStatus in messages.ts) applies it at the moment it is read.
 * The notification is made once per sending, by a dispatcher's sweep (markOverdue): it records
 * `overdue_at` and, in the same statement, a status-history row with `to_status = 'overdue'`, which the
 * publisher appends to the failure stream behind its cursor like any transition (stream-cursor.ts).
 */
import type { Queryable } from '../postgres/queryable';
import { NOW, type At, type MessageStatus } from './state-machine';
import { OPEN_STATUSES as OPEN } from './statuses';

/** When a message's SLA began, as SQL over `outbox_messages`; the sweep's index (migration 007) is on it. */
const SLA_START = 'coalesce(resent_at, created_at)';

/** The statuses in which a message can be overdue, as SQL; the sweep's index (migration 007) names the same. */
const OPEN_STATUSES = `(${OPEN.map((status) => `'${status}'`).join(', ')})`;

/**
 * SQL that is true for a message of `outbox_messages` overdue at `now` under an SLA of `slaSeconds`
 * seconds (both SQL expressions; a null SLA makes it false).
 */
export function overdueCondition(slaSeconds: string, now: string): string {
  return `status IN ${OPEN_STATUSES} AND ${SLA_START} <= ${now} - ${slaSeconds}::integer * interval '1 second'`;
}

/** A message the sweep has just found past its SLA. */
export interface OverdueMessage {
  id: number;
  entity: string;
  key: string;
  /** The status it holds (and keeps). */
  status: MessageStatus;
  executions: number;
  overdueAt: Date;
}

export interface OverdueOptions extends At {
  slaSeconds: number;
  limit: number;
}

/**
 * Marks up to `limit` messages past their SLA and not marked yet, oldest first (the dispatcher's sweep),
 * and records each in the status history for the failure stream, in one statement: both or neither. SKIP
 * LOCKED and the guard on `overdue_at` let two sweeps run at once without marking a message twice; a
 * message another transaction is moving right now is left for the next sweep.
 */
export async function markOverdue(db: Queryable, { slaSeconds, limit, now }: OverdueOptions): Promise<OverdueMessage[]> {
  const { rows } = await db.query(
    `WITH due AS MATERIALIZED (
       SELECT id FROM outbox_messages
        WHERE overdue_at IS NULL AND ${overdueCondition('$1', NOW(3))}
        ORDER BY ${SLA_START} LIMIT $2
        FOR UPDATE SKIP LOCKED
     ), marked AS (
       UPDATE outbox_messages m SET overdue_at = ${NOW(3)}
         FROM due
        WHERE m.id = due.id AND m.overdue_at IS NULL AND m.status IN ${OPEN_STATUSES}
    RETURNING m.id, m.entity, m.entity_key, m.status, m.executions, m.last_error, m.overdue_at
     ), recorded AS (
       INSERT INTO outbox_message_history (message_id, from_status, to_status, executions, error, at)
       SELECT id, status, 'overdue', executions, last_error, overdue_at FROM marked ORDER BY id
     )
     SELECT id, entity, entity_key, status, executions, overdue_at FROM marked ORDER BY id`,
    [slaSeconds, limit, now ?? null],
  );
  return rows.map((row) => ({
    id: Number(row.id),
    entity: row.entity,
    key: row.entity_key,
    status: row.status,
    executions: row.executions,
    overdueAt: row.overdue_at,
  }));
}
