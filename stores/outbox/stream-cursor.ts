/**
 * The transitions the success and failure streams carry, read from the outbox's own record of them
 * (outbox_message_history, written by the trigger behind every status change in state-machine.ts, and by
 * the SLA's sweep when a message becomes overdue), and
 * the cursor that says how far they have been appended (outbox_stream_cursor, migration 004).
 *
 * Why (xid, id) and a horizon, not the history id alone: ids are taken when a row is inserted, but rows
 * become visible when their transaction commits, so a transition with a lower id can commit after one
 * with a higher id was read and the cursor moved past it. Each history row records its transaction id
 * (xid8, never wrapping), and a pass reads only rows of transactions older than the oldest transaction
 * still running (`pg_snapshot_xmin(pg_current_snapshot())`): every one of those has ended, so no row can
 * appear behind the cursor later. The price: a write transaction left open anywhere on the PostgreSQL
 * server holds the streams back (never loses an entry) until it ends.
 */
import type pg from 'pg';
import { inTransaction } from '../postgres/transaction';
import type { Queryable } from '../postgres/queryable';

/**
 * What the streams carry, as SQL: the transitions to completed, failed and dead, and the rows the SLA's
 * sweep writes when a message becomes overdue (stores/outbox/overdue.ts). The publisher's index
 * (migration 007) has this very predicate, so that its scans can use it.
 */
const STREAMED_STATUSES = `('completed', 'failed', 'dead', 'overdue')`;

/** One transition to completed, failed or dead, or a message become overdue, as the streams carry it. */
export interface PublishedTransition {
  /** The history row's id: unique per transition, the same on every repeat of its entry. */
  transition: string;
  messageId: number;
  entity: string;
  key: string;
  version: string;
  /** `overdue` is not a status: the message passed its SLA in the status it still holds. */
  status: 'completed' | 'failed' | 'dead' | 'overdue';
  /** The execution it ended (the message's `executions` then). */
  attempt: number;
  error: string | null;
  /** Who asked for it (`cli`, `ui:<name>`), or null for the pipeline itself. */
  actor: string | null;
  at: Date;
}

/** What one pass did: another publisher held the cursor, or how many it read and how many it appended. */
export type PublishPass = { busy: true } | { busy: false; read: number; appended: number };

/**
 * The publishers' advisory lock: whoever holds it in a transaction keeps every pass from appending until
 * that transaction ends. Any value fits: transactions of one database share it, other databases have their
 * own (dispatcher claims use 7_260_531_011).
 */
export const PUBLISH_LOCK = 7_260_531_012;

/**
 * Reads up to `limit` transitions after the cursor and hands them, in order, to `append`, which says how
 * many of the first it appended; the cursor moves past those, in the same transaction. One publisher at
 * a time per outbox: the pass holds a transaction-scoped advisory lock, and a second one at the same
 * moment returns `busy` at once instead of waiting (so no dispatcher ever waits on another for this).
 * When `append` throws, the cursor stays where it was and the error goes to the caller.
 */
export async function publishTransitions(
  db: pg.Pool,
  limit: number,
  append: (transitions: PublishedTransition[]) => Promise<number>,
): Promise<PublishPass> {
  // Most passes find nothing: one statement says so, instead of a transaction of four.
  if (!(await hasTransitionsToPublish(db))) return { busy: false, read: 0, appended: 0 };
  return inTransaction(db, async (client) => {
    const { rows: lock } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [PUBLISH_LOCK]);
    if (!lock[0]!.locked) return { busy: true };
    const transitions = await readAfterCursor(client, limit);
    if (transitions.length === 0) return { busy: false, read: 0, appended: 0 };
    const appended = Math.min(await append(transitions), transitions.length);
    if (appended > 0) await advanceCursor(client, transitions[appended - 1]!);
    return { busy: false, read: transitions.length, appended };
  });
}

/**
 * Whether a transition waits after the cursor whose transaction has ended (what a pass would read). The
 * cursor's two values as scalar subqueries and the scan ordered: so it is a probe of the index at the
 * cursor (EXISTS, or a join to the cursor row, is planned as a scan of the whole history).
 */
async function hasTransitionsToPublish(db: Queryable): Promise<boolean> {
  const { rowCount } = await db.query(
    `SELECT h.id FROM outbox_message_history h
      WHERE h.to_status IN ${STREAMED_STATUSES}
        AND (h.xid, h.id) > ((SELECT last_xid FROM outbox_stream_cursor), (SELECT last_history_id FROM outbox_stream_cursor))
        AND h.xid < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY h.xid, h.id
      LIMIT 1`,
  );
  return rowCount === 1;
}

type TransitionRow = {
  id: string;
  xid: string;
  message_id: string;
  entity: string;
  entity_key: string;
  version: string;
  to_status: PublishedTransition['status'];
  executions: number;
  error: string | null;
  actor: string | null;
  at: Date;
};

/**
 * Transitions after the cursor whose transactions have all ended, oldest transaction first. The cursor is
 * read first and passed as values, so that the scan is the index's range from it, in its order (a join
 * to the cursor row may be planned as a sort of everything after it: a whole backlog, every pass).
 */
async function readAfterCursor(db: Queryable, limit: number): Promise<(PublishedTransition & { xid: string })[]> {
  const { rows: cursor } = await db.query<{ last_xid: string; last_history_id: string }>(
    'SELECT last_xid::text AS last_xid, last_history_id FROM outbox_stream_cursor',
  );
  const { rows } = await db.query<TransitionRow>(
    `SELECT h.id, h.xid::text AS xid, h.message_id, m.entity, m.entity_key, m.version::text AS version,
            h.to_status, h.executions, h.error, h.actor, h.at
       FROM outbox_message_history h
       JOIN outbox_messages m ON m.id = h.message_id
      WHERE h.to_status IN ${STREAMED_STATUSES}
        AND (h.xid, h.id) > ($1::xid8, $2::bigint)
        AND h.xid < pg_snapshot_xmin(pg_current_snapshot())
      ORDER BY h.xid, h.id
      LIMIT $3`,
    [cursor[0]!.last_xid, cursor[0]!.last_history_id, limit],
  );
  return rows.map((row) => ({
    xid: row.xid,
    transition: row.id,
    messageId: Number(row.message_id),
    entity: row.entity,
    key: row.entity_key,
    version: row.version,
    status: row.to_status,
    attempt: row.executions,
    error: row.error,
    actor: row.actor,
    at: row.at,
  }));
}

async function advanceCursor(db: Queryable, last: PublishedTransition & { xid: string }): Promise<void> {
  await db.query(`UPDATE outbox_stream_cursor SET last_xid = $1::xid8, last_history_id = $2, published_at = now()`, [last.xid, last.transition]);
}

/**
 * SQL that is true for a message (`outbox_messages` in the query) whose transitions have all been
 * appended to the streams: prune keeps the others, so that their entries are not lost with them.
 */
export const STREAMS_CAUGHT_UP = `NOT EXISTS (
  SELECT 1 FROM outbox_stream_cursor c
    JOIN outbox_message_history h ON (h.xid, h.id) > (c.last_xid, c.last_history_id)
   WHERE h.message_id = outbox_messages.id AND h.to_status IN ${STREAMED_STATUSES})`;

/** How far the streams have come: the cursor, and how many transitions wait behind it. */
export async function readStreamCursor(db: Queryable): Promise<{ lastXid: string; lastHistoryId: string; publishedAt: Date | null; waiting: number }> {
  const { rows } = await db.query<{ last_xid: string; last_history_id: string; published_at: Date | null; waiting: number }>(
    `SELECT c.last_xid::text AS last_xid, c.last_history_id::text AS last_history_id, c.published_at,
            (SELECT count(*)::int FROM outbox_message_history h
              WHERE h.to_status IN ${STREAMED_STATUSES} AND (h.xid, h.id) > (c.last_xid, c.last_history_id)) AS waiting
       FROM outbox_stream_cursor c`,
  );
  const row = rows[0]!;
  return { lastXid: row.last_xid, lastHistoryId: row.last_history_id, publishedAt: row.published_at, waiting: row.waiting };
}
