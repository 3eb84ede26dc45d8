-- The outbox: one row per business message, and its status in the pipeline (see stores/outbox/state-machine.ts).
CREATE TABLE outbox_messages (
  id               bigserial PRIMARY KEY,
  source           text,
  entity           text NOT NULL CHECK (length(entity) BETWEEN 1 AND 200),
  entity_key       text NOT NULL CHECK (length(entity_key) BETWEEN 1 AND 1000),
  op               text NOT NULL DEFAULT 'upsert' CHECK (op IN ('upsert', 'delete')),
  version          bigint CHECK (version >= 0),
  data             jsonb,
  idempotency_key  text,
  -- sha-256 of the message body, to tell a repeat (same body) from a conflict (different body).
  idempotency_hash text,
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'dead')),
  attempts         integer NOT NULL DEFAULT 0,
  last_error       text,
  -- 'transient' or 'permanent': a permanent fault is not worth another execution.
  last_error_kind  text CHECK (last_error_kind IN ('transient', 'permanent')),
  workflow_id      text,
  -- When a pending or failed message may next be claimed; for a processing one, when its lease ends.
  available_at     timestamptz NOT NULL DEFAULT now(),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz
);

-- A producer that inserts with plain SQL may leave out the version: it defaults to the message id.
CREATE FUNCTION outbox_messages_default_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version IS NULL THEN
    NEW.version := NEW.id;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER outbox_messages_default_version
  BEFORE INSERT ON outbox_messages
  FOR EACH ROW EXECUTE FUNCTION outbox_messages_default_version();

-- Wake the dispatchers (LISTEN outbox_sync_pending) once per inserting statement, not per row.
CREATE FUNCTION outbox_messages_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('outbox_sync_pending', '');
  RETURN NULL;
END $$;

CREATE TRIGGER outbox_messages_notify
  AFTER INSERT ON outbox_messages
  FOR EACH STATEMENT EXECUTE FUNCTION outbox_messages_notify();

-- Idempotency keys are unique per source (a missing source counts as one source).
CREATE UNIQUE INDEX outbox_messages_idempotency
  ON outbox_messages ((coalesce(source, '')), idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- The dispatcher's and the redriver's claims, and the reconciler's scan.
CREATE INDEX outbox_messages_pending ON outbox_messages (id) WHERE status = 'pending';
CREATE INDEX outbox_messages_failed ON outbox_messages (available_at) WHERE status = 'failed';
CREATE INDEX outbox_messages_processing ON outbox_messages (available_at) WHERE status = 'processing';
CREATE INDEX outbox_messages_entity_key ON outbox_messages (entity, entity_key);
