/**
 * `npm run bench -- --target postgres|mysql`: the bench's entities synced into tables of a user's own (one
 * table per entity, made here as a user would), in a PostgreSQL or a MariaDB/MySQL database of the run's
 * own, instead of synced_records. The check reads them back through the bookkeeping table.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { pgSettings } from '../stores/postgres/connect';
import { databaseUrl, dropDatabase, ensureDatabase } from '../stores/postgres/migrate';
import type { HeldRecord } from './check';

export const BENCH_TARGETS = ['synced', 'postgres', 'mysql'] as const;
export type BenchTarget = (typeof BENCH_TARGETS)[number];

export interface UserTables {
  /** Settings that point the pipeline at the mapping. */
  env: Record<string, string>;
  /** Where the rows go, for the report. */
  describe: string;
  /** The rows the run left, as the check compares them with the newest messages. */
  readHeld(entities: readonly string[]): Promise<HeldRecord[]>;
  drop(): Promise<void>;
}

const tableOf = (entity: string) => `bench_${entity.replace(/[^a-z0-9]/g, '_')}`;

const POSTGRES_TABLE = (table: string) =>
  `CREATE TABLE ${table} (entity_key varchar(100) PRIMARY KEY, n bigint NOT NULL, customer varchar(20), total numeric(10,1), items jsonb)`;
const MYSQL_TABLE = (table: string) =>
  `CREATE TABLE ${table} (entity_key varchar(100) PRIMARY KEY, n bigint NOT NULL, customer varchar(20), total decimal(10,1), items json) ENGINE = InnoDB`;

/** Makes the run's database and one table per entity, and writes the mapping file into `dataDir`. */
export async function makeUserTables(
  target: Exclude<BenchTarget, 'synced'>,
  options: { name: string; entities: readonly string[]; postgresUrl: string; mysqlUrl: string; dataDir: string },
): Promise<UserTables> {
  const database = `${options.name}_user`;
  let url: string;
  let query: (sql: string, params?: unknown[]) => Promise<Record<string, any>[]>;
  let drop: () => Promise<void>;
  if (target === 'postgres') {
    url = databaseUrl(options.postgresUrl, database);
    await ensureDatabase(url);
    const pool = new pg.Pool(pgSettings(url, { max: 2 }));
    // Dropping the database at the end ends its idle connections; that is no error.
    pool.on('error', () => undefined);
    query = async (sql, params = []) => (await pool.query(sql.replace(/\?/g, () => '$1'), params)).rows;
    for (const entity of options.entities) await query(POSTGRES_TABLE(tableOf(entity)));
    drop = async () => {
      await pool.end();
      await dropDatabase(options.postgresUrl, database);
    };
  } else {
    const admin = await mysql.createConnection({ uri: options.mysqlUrl });
    await admin.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
    await admin.end();
    url = `${options.mysqlUrl.replace(/\/$/, '')}/${database}`;
    const pool = mysql.createPool({ uri: url, connectionLimit: 2, supportBigNumbers: true, bigNumberStrings: true });
    query = async (sql, params = []) => (await pool.query<mysql.RowDataPacket[]>(sql, params))[0];
    for (const entity of options.entities) await query(MYSQL_TABLE(tableOf(entity)));
    drop = async () => {
      await pool.end();
      const cleanup = await mysql.createConnection({ uri: options.mysqlUrl });
      await cleanup.query(`DROP DATABASE IF EXISTS ${database}`);
      await cleanup.end();
    };
  }
  const file = join(options.dataDir, 'targets.json');
  const entities = Object.fromEntries(options.entities.map((entity) => [entity, { database: 'bench', table: tableOf(entity), key: 'entity_key' }]));
  writeFileSync(file, JSON.stringify({ databases: { bench: url }, entities }));
  return {
    env: { OUTBOX_SYNC_TARGETS: file },
    describe: `${target === 'postgres' ? 'PostgreSQL' : 'MariaDB/MySQL'} tables ${options.entities.map(tableOf).join(', ')}`,
    async readHeld(wanted) {
      const held: HeldRecord[] = [];
      for (const entity of wanted) {
        const rows = await query(
          `SELECT v.entity_key, v.version, v.deleted, v.message_id, t.entity_key AS row_key, t.n, t.customer, t.total, t.items
             FROM outbox_sync_versions v LEFT JOIN ${tableOf(entity)} t ON t.entity_key = v.entity_key WHERE v.entity = ?`,
          [entity],
        );
        for (const r of rows) {
          const items = typeof r.items === 'string' ? JSON.parse(r.items) : r.items;
          const data = r.row_key === null ? null : { n: Number(r.n), customer: r.customer, total: Number(r.total), items };
          held.push({ entity, key: r.entity_key, version: String(r.version), data, deleted: Boolean(Number(r.deleted)) && r.row_key === null, messageId: Number(r.message_id) });
        }
      }
      return held;
    },
    drop,
  };
}
