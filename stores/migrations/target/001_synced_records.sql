-- The target: the latest completed version of each (entity, key). A delete leaves a tombstone
-- (deleted = true, data = null) so that an older upsert arriving later cannot bring the record back.
CREATE TABLE synced_records (
  entity      text NOT NULL,
  entity_key  text NOT NULL,
  version     bigint NOT NULL,
  data        jsonb,
  deleted     boolean NOT NULL DEFAULT false,
  message_id  bigint NOT NULL,
  synced_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (entity, entity_key)
);
