-- In each database that holds mapped tables: the newest version written for each (entity, key), and whether
-- it was a delete (the tombstone), so that an older message never overwrites a newer row nor brings back a
-- deleted one. Written in the same transaction as the user's row; the user's tables need no extra column.
CREATE TABLE outbox_sync_versions (
  entity      text NOT NULL,
  entity_key  text NOT NULL,
  version     bigint NOT NULL,
  deleted     boolean NOT NULL DEFAULT false,
  message_id  bigint NOT NULL,
  synced_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (entity, entity_key)
);
