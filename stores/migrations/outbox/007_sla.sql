-- The SLA (OUTBOX_SYNC_SLA_SECONDS): a message still pending, processing or failed that long after it was
-- sent is overdue (stores/outbox/overdue.ts). A dispatcher's sweep records when a message became overdue,
-- once, and in the same statement a row of the status history with to_status 'overdue', which the
-- publisher appends to the failure stream like any transition: a Redis outage then delays the
-- notification and loses nothing, and a sweep run again finds the message already marked.
--
-- overdue_at: when the sweep found the message past its SLA; null while it is not (or never was).
-- resent_at: when an operator's retry or verify --repair last sent the message back to pending. Its SLA
-- counts from then (not from created_at, long past), and overdue_at is cleared with it.
-- Both nullable without a default: adding them rewrites nothing.
ALTER TABLE outbox_messages ADD COLUMN overdue_at timestamptz;
ALTER TABLE outbox_messages ADD COLUMN resent_at timestamptz;

-- The sweep's scan: open messages not marked yet, by when their SLA began. A message leaves the index
-- when it is marked or finishes, so the index holds only what a sweep may still have to mark, and a
-- sweep reads only the entries already past the SLA, however large the outbox.
CREATE INDEX outbox_messages_sla ON outbox_messages ((coalesce(resent_at, created_at)))
  WHERE overdue_at IS NULL AND status IN ('pending', 'processing', 'failed');

-- The publisher's scan (migration 004) takes the overdue rows too; the predicate is the one its queries
-- name (STREAMED_STATUSES in stores/outbox/stream-cursor.ts).
DROP INDEX outbox_message_history_stream;
CREATE INDEX outbox_message_history_stream ON outbox_message_history (xid, id)
  WHERE to_status IN ('completed', 'failed', 'dead', 'overdue');
