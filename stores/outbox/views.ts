/**
 * The outbox page's reads, one named function each: the list of messages (filtered, newest first, a page
 * at a time), one message's status history, and the last hour of activity. Reads only; the page's one
 * action, retry, is retryMessages in outbox/store.ts.
 */
import type { MessageStatus } from './state-machine';
import type { Queryable } from '../postgres/queryable';
import { filterCondition, type MessageFilter } from './filter';

/** A row of the list: what an operator needs to decide whether to look closer or retry. */
export interface MessageSummary {
  id: number;
  source: string | null;
  entity: string;
  key: string;
  status: MessageStatus;
  attempts: number;
  lastError: string | null;
  lastErrorKind: 'transient' | 'permanent' | null;
  workflowId: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** When it passed its SLA, once per sending (overdue.ts); null if it has not. */
  overdueAt: Date | null;
}

export interface MessagePage {
  messages: MessageSummary[];
  /** The cursor of the next page; null on the last one. */
  next: string | null;
  /** Every message the filter matches, on this page or any other. */
  total: number;
}

/** A cursor is not one from a previous page (edited, truncated, or from another version). */
export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

/**
 * A page of the messages a filter matches, most recently changed first (`updated_at DESC, id DESC`).
 * Keyset paging: the cursor holds the last row's position (updated_at in microseconds, as a Date would
 * round it to milliseconds and skip or repeat rows), so a page costs the same deep in the list as at its top.
 */
export async function listMessages(db: Queryable, filter: MessageFilter, page: { after?: string; limit: number }): Promise<MessagePage> {
  const params: unknown[] = [];
  const where = filterCondition(filter, params);
  const countParams = [...params];
  let keyset = '';
  if (page.after !== undefined) {
    const { updatedMicros, id } = decodeCursor(page.after);
    keyset = ` AND (updated_at, id) < ('epoch'::timestamptz + $${params.push(updatedMicros)}::bigint * interval '1 microsecond', $${params.push(id)}::bigint)`;
  }
  const [rows, count] = await Promise.all([
    db.query(
      `SELECT id, source, entity, entity_key, status, executions AS attempts, last_error, last_error_kind, workflow_id, created_at, updated_at, overdue_at,
              (extract(epoch FROM updated_at) * 1000000)::bigint AS updated_micros
         FROM outbox_messages
        WHERE ${where}${keyset}
        ORDER BY updated_at DESC, id DESC
        LIMIT $${params.push(page.limit + 1)}`,
      params,
    ),
    db.query<{ n: string }>(`SELECT count(*) AS n FROM outbox_messages WHERE ${where}`, countParams),
  ]);
  const more = rows.rows.length > page.limit;
  const shown = rows.rows.slice(0, page.limit);
  const last = shown[shown.length - 1];
  return {
    messages: shown.map(toSummary),
    next: more && last ? encodeCursor(String(last.updated_micros), Number(last.id)) : null,
    total: Number(count.rows[0]!.n),
  };
}

function encodeCursor(updatedMicros: string, id: number): string {
  return Buffer.from(JSON.stringify([updatedMicros, id])).toString('base64url');
}

function decodeCursor(cursor: string): { updatedMicros: string; id: number } {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && /^-?[0-9]{1,19}$/.test(String(value[0])) && Number.isSafeInteger(value[1]) && value[1] > 0) {
      return { updatedMicros: String(value[0]), id: value[1] };
    }
  } catch {
    // not JSON: refused below
  }
  throw new InvalidCursorError('is not a cursor from a previous page');
}

function toSummary(row: Record<string, any>): MessageSummary {
  return {
    id: Number(row.id),
    source: row.source,
    entity: row.entity,
    key: row.entity_key,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    lastErrorKind: row.last_error_kind,
    workflowId: row.workflow_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    overdueAt: row.overdue_at,
  };
}

/**
 * One change of a message's status, or of its execution count; or the moment it passed its SLA (`to` is
 * then `overdue`, and `from` the status it held and kept).
 */
export interface HistoryEntry {
  at: Date;
  /** null for the message's creation. */
  from: MessageStatus | null;
  to: MessageStatus | 'overdue';
  attempts: number;
  /** The reason of a move to failed or dead. */
  error: string | null;
  /** Who asked for it (`cli`, `ui:<name>`); null when the pipeline moved it. */
  actor: string | null;
}

/**
 * A message's history, oldest first, starting with its creation (pending, at created_at: an insert is
 * not recorded by the trigger, and producers insert with plain SQL). Empty when there is no such message.
 */
export async function readHistory(db: Queryable, messageId: number): Promise<HistoryEntry[]> {
  const { rows } = await db.query(
    `SELECT created_at AS at, NULL AS from_status, 'pending' AS to_status, 0 AS attempts, NULL AS error, NULL AS actor, 0 AS id
       FROM outbox_messages WHERE id = $1
     UNION ALL
     SELECT at, from_status, to_status, executions AS attempts, error, actor, id
       FROM outbox_message_history WHERE message_id = $1
      ORDER BY id`,
    [messageId],
  );
  return rows.map((row) => ({ at: row.at, from: row.from_status, to: row.to_status, attempts: row.attempts, error: row.error, actor: row.actor }));
}

/** One minute of the last hour. */
export interface ActivityMinute {
  /** The minute's start. */
  at: Date;
  /** Messages that reached completed in this minute. */
  completed: number;
  /** Moves to failed or dead in this minute. */
  failed: number;
  /** From creation to completion, of the messages completed in this minute; null when none was. */
  latencyMs: { p50: number; p95: number; p99: number } | null;
}

/** The last 60 minutes (the current one included), oldest first, quiet minutes as zeros. */
export async function readActivity(db: Queryable): Promise<ActivityMinute[]> {
  const { rows } = await db.query(
    `WITH minutes AS (
       SELECT generate_series(date_trunc('minute', now()) - interval '59 minutes', date_trunc('minute', now()), interval '1 minute') AS at
     ), completed AS (
       SELECT date_trunc('minute', completed_at) AS at, count(*) AS n,
              percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at) * 1000) AS latency
         FROM outbox_messages
        WHERE status = 'completed' AND completed_at >= date_trunc('minute', now()) - interval '59 minutes'
        GROUP BY 1
     ), failed AS (
       SELECT date_trunc('minute', at) AS at, count(*) AS n
         FROM outbox_message_history
        WHERE to_status IN ('failed', 'dead') AND at >= date_trunc('minute', now()) - interval '59 minutes'
        GROUP BY 1
     )
     SELECT minutes.at, coalesce(completed.n, 0) AS completed, coalesce(failed.n, 0) AS failed, completed.latency
       FROM minutes LEFT JOIN completed USING (at) LEFT JOIN failed USING (at)
      ORDER BY minutes.at`,
  );
  return rows.map((row) => ({
    at: row.at,
    completed: Number(row.completed),
    failed: Number(row.failed),
    latencyMs: row.latency ? { p50: Math.round(row.latency[0]), p95: Math.round(row.latency[1]), p99: Math.round(row.latency[2]) } : null,
  }));
}
