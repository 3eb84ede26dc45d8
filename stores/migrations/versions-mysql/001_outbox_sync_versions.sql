-- The same bookkeeping table as in PostgreSQL (see stores/migrations/versions). A key may be up to 1,000
-- characters, longer than InnoDB indexes, so rows are found by the key's SHA-256 and the key is kept beside
-- it. version -1 marks a row made only to lock the key before its first write.
CREATE TABLE IF NOT EXISTS outbox_sync_versions (
  entity      varchar(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  key_hash    binary(32) NOT NULL,
  entity_key  text CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  version     bigint NOT NULL,
  deleted     boolean NOT NULL DEFAULT false,
  message_id  bigint NOT NULL,
  synced_at   datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (entity, key_hash)
) ENGINE = InnoDB
