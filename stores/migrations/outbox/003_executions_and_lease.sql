-- Names that say one thing each. `attempts` counted the message's executions (one workflow run each),
-- while Temporal's own "attempt" counts the tries of one activity: the column becomes `executions`.
-- `available_at` meant "may run again from" for a pending or failed message and "the lease ends" for a
-- processing one: it becomes `next_run_at`, and the lease gets a column of its own, set only while the
-- message is processing. Producers that insert with plain SQL set neither and are unaffected.
ALTER TABLE outbox_messages RENAME COLUMN attempts TO executions;
ALTER TABLE outbox_messages RENAME COLUMN available_at TO next_run_at;
ALTER TABLE outbox_messages ADD COLUMN lease_ends_at timestamptz;

-- The reconciler's scan follows the lease; the redriver's (outbox_messages_failed) follows next_run_at,
-- which the rename carried along.
DROP INDEX outbox_messages_processing;
CREATE INDEX outbox_messages_lease ON outbox_messages (lease_ends_at) WHERE status = 'processing';

ALTER TABLE outbox_message_history RENAME COLUMN attempts TO executions;

CREATE OR REPLACE FUNCTION outbox_messages_record_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox_message_history (message_id, from_status, to_status, executions, error, actor)
  SELECT n.id, o.status, n.status, n.executions,
         CASE WHEN n.status IN ('failed', 'dead') THEN n.last_error END,
         nullif(current_setting('outbox_sync.actor', true), '')
    FROM new_rows n JOIN old_rows o ON o.id = n.id
   WHERE n.status IS DISTINCT FROM o.status OR n.executions IS DISTINCT FROM o.executions
   ORDER BY n.id;
  RETURN NULL;
END $$;

-- The leases of messages in processing now (after the trigger is current: the UPDATE fires it).
UPDATE outbox_messages SET lease_ends_at = next_run_at WHERE status = 'processing';
