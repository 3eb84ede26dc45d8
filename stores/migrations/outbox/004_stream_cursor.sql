-- The success and failure streams are written from the outbox's own record of transitions: every move to
-- completed, failed or dead in outbox_message_history is appended by the publisher (dispatcher/publish.ts),
-- which keeps how far it got in the outbox itself (stores/outbox/stream-cursor.ts).
--
-- The id of a history row is not a safe cursor: ids are handed out when a row is inserted, not when its
-- transaction commits, so a row with a lower id can become visible after a higher one was read. Each row
-- records its transaction (xid8), and the publisher reads only rows of transactions older than the oldest
-- still running, in (xid, id) order: nothing can commit behind the cursor any more.
--
-- Rows already there read as transaction 0 and stay behind the cursor below: an upgrade does not publish
-- the whole history again. (A constant default, so adding the column rewrites nothing; rows inserted from
-- now on take their transaction's id.)
ALTER TABLE outbox_message_history ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE outbox_message_history ALTER COLUMN xid SET DEFAULT pg_current_xact_id();

-- The publisher's scan: transitions the streams carry, in cursor order.
CREATE INDEX outbox_message_history_stream ON outbox_message_history (xid, id)
  WHERE to_status IN ('completed', 'failed', 'dead');

-- One row: the last transition appended, as (xid, history id).
CREATE TABLE outbox_stream_cursor (
  only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  last_xid        xid8 NOT NULL,
  last_history_id bigint NOT NULL,
  published_at    timestamptz
);

INSERT INTO outbox_stream_cursor (last_xid, last_history_id)
SELECT '0', coalesce(max(id), 0) FROM outbox_message_history;
