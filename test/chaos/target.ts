/**
 * Where the chaos run's messages land, and how its target faults reach that place: `synced` is the generic
 * synced_records table; `postgres` and `mysql` are a user's own table (made by plain SQL, as a user would)
 * in a PostgreSQL database or in MariaDB, mapped by an OUTBOX_SYNC_TARGETS file (whose bookkeeping table
 * `outbox-sync migrate` then makes). Either way the target's traffic goes through a fault proxy, and the
 * harness reads what landed with connections of its own.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pgSettings } from '../../stores/postgres/connect';
import { databaseUrl, dropDatabase, migrateDatabase } from '../../stores/postgres/migrate';
import { FaultProxy } from '../support/fault-proxy';
import { TEST_MYSQL_URL } from '../support/user-databases';

export const CHAOS_TARGETS = ['synced', 'postgres', 'mysql'] as const;
export type ChaosTargetKind = (typeof CHAOS_TARGETS)[number];

/** A key's state in the target, read back the same way whatever the target. */
export interface LandedKey {
  version: number;
  deleted: boolean;
  /** The data as the target holds it; null for a delete. */
  data: Record<string, unknown> | null;
}

export interface ChaosTarget {
  kind: ChaosTargetKind;
  /** The database the target faults act on. */
  database: string;
  proxy: FaultProxy;
  /** The child processes' target settings. */
  env: Record<string, string>;
  /** Every key of `entity` in the target. */
  read(entity: string): Promise<Map<string, LandedKey>>;
  /** Ends every connection of our processes to the target database; returns how many. */
  terminateConnections(): Promise<number>;
  close(): Promise<void>;
}

/** The user's table: the workload's data is {key, version, note}. */
const USER_TABLE = {
  postgres: 'CREATE TABLE chaos_rows (id varchar(100) PRIMARY KEY, version bigint NOT NULL, note text, deleted_at timestamptz)',
  mysql: 'CREATE TABLE chaos_rows (id varchar(100) PRIMARY KEY, version bigint NOT NULL, note text)',
};

export interface TargetPlace {
  kind: ChaosTargetKind;
  /** Names the run's databases. */
  name: string;
  /** The run's directory, for the mapping file. */
  dir: string;
  postgresUrl: string;
  entity: string;
  /** The harness's connections carry this name, so that the faults spare them. */
  harness: string;
}

export async function openChaosTarget(place: TargetPlace): Promise<ChaosTarget> {
  // synced_records is always there: the fallback for unmapped entities (and the target of `synced`).
  const syncedDatabase = `${place.name}_target`;
  await migrateDatabase(databaseUrl(place.postgresUrl, syncedDatabase), 'target');
  if (place.kind === 'mysql') return mysqlTarget(place, syncedDatabase);
  const server = new URL(place.postgresUrl);
  const proxy = await FaultProxy.start(server.hostname, Number(server.port || 5432));
  const proxied = (database: string) => databaseUrl(`postgres://127.0.0.1:${proxy.port}/postgres`, database);
  const database = place.kind === 'synced' ? syncedDatabase : `${place.name}_user`;
  const reader = new pg.Pool(pgSettings(databaseUrl(place.postgresUrl, database), { application_name: place.harness, max: 2 }));
  reader.on('error', () => undefined);
  const env: Record<string, string> = { TARGET_DATABASE_URL: place.kind === 'synced' ? proxied(syncedDatabase) : databaseUrl(place.postgresUrl, syncedDatabase) };
  if (place.kind === 'postgres') {
    const admin = new pg.Client(pgSettings(place.postgresUrl, { application_name: place.harness }));
    await admin.connect();
    await admin.query(`CREATE DATABASE ${database}`).finally(() => admin.end());
    await reader.query(USER_TABLE.postgres);
    env.OUTBOX_SYNC_TARGETS = mappingFile(place, proxied(database), { softDelete: 'deleted_at' });
  }
  const read = place.kind === 'synced' ? readSyncedRecords : readUserRows;
  return {
    kind: place.kind,
    database,
    proxy,
    env,
    read: (entity) => read(reader, entity),
    terminateConnections: () => terminatePostgresConnections(place.postgresUrl, database, place.harness),
    async close() {
      await proxy.close();
      await reader.end().catch(() => undefined);
      await dropDatabase(place.postgresUrl, syncedDatabase);
      if (database !== syncedDatabase) await dropDatabase(place.postgresUrl, database);
    },
  };
}

async function mysqlTarget(place: TargetPlace, syncedDatabase: string): Promise<ChaosTarget> {
  const server = new URL(TEST_MYSQL_URL);
  const database = place.name;
  // The harness's connection names no database, so that terminating the run's connections spares it.
  const admin = await mysql.createConnection({ uri: TEST_MYSQL_URL, supportBigNumbers: true, bigNumberStrings: true });
  await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
  await admin.query(`${USER_TABLE.mysql.replace('chaos_rows', `${database}.chaos_rows`)}`);
  const proxy = await FaultProxy.start(server.hostname, Number(server.port || 3306));
  const proxied = new URL(TEST_MYSQL_URL);
  proxied.host = `127.0.0.1:${proxy.port}`;
  proxied.pathname = `/${database}`;
  return {
    kind: 'mysql',
    database,
    proxy,
    env: {
      TARGET_DATABASE_URL: databaseUrl(place.postgresUrl, syncedDatabase),
      OUTBOX_SYNC_TARGETS: mappingFile(place, proxied.toString(), 'delete'),
    },
    async read(entity) {
      const [rows] = await admin.query(
        `SELECT v.entity_key, v.version, v.deleted, r.id IS NOT NULL AS present, r.version AS row_version, r.note
           FROM ${database}.outbox_sync_versions v LEFT JOIN ${database}.chaos_rows r ON r.id = v.entity_key
          WHERE v.entity = ? AND v.version >= 0`,
        [entity],
      );
      const landed = new Map<string, LandedKey>();
      for (const r of rows as { entity_key: string; version: string; deleted: number; present: number; row_version: string | null; note: string | null }[]) {
        landed.set(r.entity_key, landedKey(r.entity_key, Number(r.version), r.deleted === 1, r.present === 1 ? { version: r.row_version!, note: r.note } : null));
      }
      // A row without bookkeeping was written by something else: it counts as a key nobody expected.
      const [strays] = await admin.query(`SELECT r.id FROM ${database}.chaos_rows r WHERE NOT EXISTS (SELECT 1 FROM ${database}.outbox_sync_versions v WHERE v.entity_key = r.id AND v.version >= 0)`);
      for (const { id } of strays as { id: string }[]) landed.set(`stray:${id}`, { version: -1, deleted: false, data: null });
      return landed;
    },
    async terminateConnections() {
      const [rows] = await admin.query('SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()', [database]);
      let ended = 0;
      for (const { id } of rows as { id: number }[]) {
        // A connection may close on its own meanwhile.
        if (await admin.query(`KILL ${Number(id)}`).then(() => true, () => false)) ended++;
      }
      return ended;
    },
    async close() {
      await proxy.close();
      await admin.query(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
      await admin.end();
      await dropDatabase(place.postgresUrl, syncedDatabase);
    },
  };
}

function mappingFile(place: TargetPlace, url: string, onDelete: 'delete' | { softDelete: string }): string {
  const file = join(place.dir, 'targets.json');
  const mapping = { databases: { user: url }, entities: { [place.entity]: { database: 'user', table: 'chaos_rows', key: 'id', columns: { version: 'version', note: 'note' }, onDelete } } };
  writeFileSync(file, JSON.stringify(mapping));
  return file;
}

async function readSyncedRecords(reader: pg.Pool, entity: string): Promise<Map<string, LandedKey>> {
  const { rows } = await reader.query<{ entity_key: string; version: string; data: Record<string, unknown> | null; deleted: boolean }>(
    'SELECT entity_key, version, data, deleted FROM synced_records WHERE entity = $1',
    [entity],
  );
  return new Map(rows.map((r) => [r.entity_key, { version: Number(r.version), deleted: r.deleted, data: r.deleted ? null : r.data }]));
}

/** The user's rows with the bookkeeping beside them: the version and the tombstone live there. */
async function readUserRows(reader: pg.Pool, entity: string): Promise<Map<string, LandedKey>> {
  const { rows } = await reader.query<{ entity_key: string; version: string; deleted: boolean; live: boolean | null; row_version: string | null; note: string | null }>(
    `SELECT v.entity_key, v.version, v.deleted, r.id IS NOT NULL AND r.deleted_at IS NULL AS live, r.version AS row_version, r.note
       FROM outbox_sync_versions v LEFT JOIN chaos_rows r ON r.id = v.entity_key
      WHERE v.entity = $1`,
    [entity],
  );
  const landed = new Map<string, LandedKey>();
  for (const r of rows) landed.set(r.entity_key, landedKey(r.entity_key, Number(r.version), r.deleted, r.live ? { version: r.row_version!, note: r.note } : null));
  const { rows: strays } = await reader.query<{ id: string }>('SELECT id FROM chaos_rows r WHERE NOT EXISTS (SELECT 1 FROM outbox_sync_versions v WHERE v.entity_key = r.id)');
  for (const { id } of strays) landed.set(`stray:${id}`, { version: -1, deleted: false, data: null });
  return landed;
}

/**
 * A key as the bookkeeping and the user's row show it together. A tombstone counts as deleted only when
 * the row is gone (or soft-deleted); an upsert's data is what the row holds.
 */
function landedKey(key: string, version: number, tombstone: boolean, row: { version: string; note: string | null } | null): LandedKey {
  if (tombstone) return { version, deleted: row === null, data: null };
  return { version, deleted: false, data: row && { key, version: Number(row.version), note: row.note } };
}

/** Terminates every connection to `database` except the harness's own (named `harness`); returns how many. */
export async function terminatePostgresConnections(postgresUrl: string, database: string, harness: string): Promise<number> {
  const admin = new pg.Client(pgSettings(postgresUrl, { application_name: harness }));
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name <> $2`,
      [database, harness],
    );
    return rows[0]!.n;
  } finally {
    await admin.end();
  }
}
