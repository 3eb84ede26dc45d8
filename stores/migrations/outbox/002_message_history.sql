-- Every change of a message's status (or of its execution count), kept for the outbox page: when it
-- happened, from what to what, and who asked for it. Rows go with their message when it is pruned.
CREATE TABLE outbox_message_history (
  id          bigserial PRIMARY KEY,
  message_id  bigint NOT NULL REFERENCES outbox_messages (id) ON DELETE CASCADE,
  from_status text NOT NULL,
  to_status   text NOT NULL,
  attempts    integer NOT NULL,
  -- The reason, for a move to failed or dead.
  error       text,
  -- Who moved it, when someone did (`cli`, `ui:<token name>`); null for the pipeline itself.
  actor       text,
  at          timestamptz NOT NULL DEFAULT now()
);

-- One INSERT per UPDATE statement, whatever its size: a claim of 200 messages costs one more statement,
-- not 200 (transition tables hold the rows before and after). The actor is whatever the transaction set
-- with set_config('outbox_sync.actor', ..., true); outside such a transaction it is null.
CREATE FUNCTION outbox_messages_record_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox_message_history (message_id, from_status, to_status, attempts, error, actor)
  SELECT n.id, o.status, n.status, n.attempts,
         CASE WHEN n.status IN ('failed', 'dead') THEN n.last_error END,
         nullif(current_setting('outbox_sync.actor', true), '')
    FROM new_rows n JOIN old_rows o ON o.id = n.id
   WHERE n.status IS DISTINCT FROM o.status OR n.attempts IS DISTINCT FROM o.attempts
   ORDER BY n.id;
  RETURN NULL;
END $$;

CREATE TRIGGER outbox_messages_record_history
  AFTER UPDATE ON outbox_messages
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_messages_record_history();

-- A message's history in order (and the cascade when a message is deleted).
CREATE INDEX outbox_message_history_message ON outbox_message_history (message_id, id);
-- The activity chart's last hour: rows are appended in time order, so a BRIN index stays tiny.
CREATE INDEX outbox_message_history_at ON outbox_message_history USING brin (at);
-- Completed messages by when they completed: the activity chart and prune.
CREATE INDEX outbox_messages_completed ON outbox_messages (completed_at) WHERE status = 'completed';
-- The page's list of failed and dead messages, newest first.
CREATE INDEX outbox_messages_failed_dead_updated ON outbox_messages (updated_at DESC, id DESC) WHERE status IN ('failed', 'dead');
