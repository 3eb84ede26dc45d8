/**
 * The second database. Each (entity, key) holds the highest version completed so far: the upsert only
 * replaces a row whose version is lower, so replays and late, older messages change nothing. A delete
 * is a tombstone row, which an older upsert cannot bring back.
 */
import type { Queryable } from '../outbox/enqueue';

/** One row of the target: what was written, and what is read back. */
export interface TargetRecord {
  entity: string;
  key: string;
  version: string;
  /** null for a delete. */
  data: unknown;
  deleted: boolean;
  messageId: number;
}

/** A version to write: its data as a value, or as the JSON text the outbox holds (numbers kept exact). */
export type RecordWrite = Omit<TargetRecord, 'data'> & ({ data: unknown } | { dataJson: string | null });

/** Writes one version; returns true if it is now the row's version, false if a newer one was already there. */
export async function upsertRecord(db: Queryable, write: RecordWrite): Promise<boolean> {
  const data = write.deleted ? null : 'dataJson' in write ? write.dataJson : JSON.stringify(write.data);
  const { rowCount } = await db.query(
    `INSERT INTO synced_records (entity, entity_key, version, data, deleted, message_id)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (entity, entity_key) DO UPDATE
        SET version = EXCLUDED.version, data = EXCLUDED.data, deleted = EXCLUDED.deleted,
            message_id = EXCLUDED.message_id, synced_at = now()
      WHERE synced_records.version < EXCLUDED.version`,
    [write.entity, write.key, write.version, data, write.deleted, write.messageId],
  );
  return rowCount === 1;
}

export async function readRecord(db: Queryable, entity: string, key: string): Promise<TargetRecord | null> {
  const { rows } = await db.query('SELECT * FROM synced_records WHERE entity = $1 AND entity_key = $2', [entity, key]);
  const row = rows[0];
  if (!row) return null;
  return {
    entity: row.entity,
    key: row.entity_key,
    version: String(row.version),
    data: row.data,
    deleted: row.deleted,
    messageId: Number(row.message_id),
  };
}
