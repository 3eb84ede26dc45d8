/**
 * The second database. Each (entity, key) holds the highest version completed so far: the upsert only
 * replaces a row whose version is lower, so replays and late, older messages change nothing. A delete
 * is a tombstone row, which an older upsert cannot bring back.
 */
import type { Queryable } from '../postgres/queryable';
import type { TargetProblem } from './engine';
import type { CompletedVersion } from './targets';

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
export type RecordWrite = Omit<TargetRecord, 'data'> & ({ data: unknown } | { dataJson: string | null }) & {
  /** Replace an equal version too (a repair); a newer one never. */
  overwrite?: boolean;
};

/** Writes one version; returns true if it is now the row's version, false if a newer one was already there. */
export async function upsertRecord(db: Queryable, write: RecordWrite): Promise<boolean> {
  const data = write.deleted ? null : 'dataJson' in write ? write.dataJson : JSON.stringify(write.data);
  const { rowCount } = await db.query(
    `INSERT INTO synced_records (entity, entity_key, version, data, deleted, message_id)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (entity, entity_key) DO UPDATE
        SET version = EXCLUDED.version, data = EXCLUDED.data, deleted = EXCLUDED.deleted,
            message_id = EXCLUDED.message_id, synced_at = now()
      WHERE synced_records.version < EXCLUDED.version OR ($7 AND synced_records.version = EXCLUDED.version)`,
    [write.entity, write.key, write.version, data, write.deleted, write.messageId, write.overwrite === true],
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

/**
 * Whether each key's row holds its newest completed message (stores/verify.ts), in one query: null where
 * it does (or holds a newer version), else missing (no row), stale (an older version) or different (the
 * same version with other data, or a delete's tombstone where an upsert should be, or the reverse).
 */
export async function compareRecords(db: Queryable, expected: readonly CompletedVersion[]): Promise<(TargetProblem | null)[]> {
  if (expected.length === 0) return [];
  const { rows } = await db.query<{ i: string; problem: TargetProblem | null }>(
    `SELECT e.i, CASE
              WHEN r.entity IS NULL THEN 'missing'
              WHEN r.version < e.version THEN 'stale'
              WHEN r.version > e.version THEN NULL
              WHEN r.deleted <> e.deleted OR (NOT e.deleted AND r.data IS DISTINCT FROM e.data) THEN 'different'
            END AS problem
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::jsonb[], $5::boolean[]) WITH ORDINALITY AS e (entity, entity_key, version, data, deleted, i)
       LEFT JOIN synced_records r ON r.entity = e.entity AND r.entity_key = e.entity_key
      ORDER BY e.i`,
    [
      expected.map((m) => m.entity),
      expected.map((m) => m.key),
      expected.map((m) => m.version),
      expected.map((m) => m.dataText),
      expected.map((m) => m.op === 'delete'),
    ],
  );
  return rows.map((row) => row.problem);
}
