/**
 * Numbered, append-only SQL migrations (stores/migrations/<set>/NNN_name.sql). Each run takes a transaction-level
 * advisory lock, so two migrators at once are harmless: the second waits, then finds nothing to do.
 * Also the database lifecycle that `migrate`, the tests and the bench share: create, migrate, drop.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { pgSettings } from './connect';
import { PgErrorCode, sqlState } from './errors';
import { inTransaction } from './transaction';
import { packageRoot } from '../../config/package-root';

/** outbox: the first database; target: synced_records; versions: the bookkeeping of each PostgreSQL database with mapped tables. */
export type MigrationSet = 'outbox' | 'target' | 'versions';

const LOCK_KEY = 'outbox_sync_migrations';

/** Applies the migrations of `set` that the database has not seen; returns the names applied. */
export async function migrate(pool: pg.Pool, set: MigrationSet): Promise<string[]> {
  const dir = join(packageRoot, 'stores', 'migrations', set);
  const files = readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort();
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [LOCK_KEY]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS outbox_sync_migrations (
         name text PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM outbox_sync_migrations')).rows.map((r) => r.name));
    const applied: string[] = [];
    for (const file of files) {
      const name = `${set}/${file}`;
      if (done.has(name)) continue;
      await client.query(readFileSync(join(dir, file), 'utf8'));
      await client.query('INSERT INTO outbox_sync_migrations (name) VALUES ($1)', [name]);
      applied.push(name);
    }
    return applied;
  });
}

/** Creates the database a URL names if it does not exist yet (connecting to the server's `postgres` database). */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error(`${databaseUrl} names no database`);
  url.pathname = '/postgres';
  const client = new pg.Client(pgSettings(url.toString()));
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
      return true;
    } catch (err) {
      // Another process created it first.
      const code = sqlState(err);
      if (code === PgErrorCode.duplicateDatabase || code === PgErrorCode.uniqueViolation) return false;
      throw err;
    }
  } finally {
    await client.end();
  }
}

/** The URL of `database` on the server `serverUrl` points at. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Creates the database `url` names if missing, then applies `set`; says whether it was created and what was applied. */
export async function migrateDatabase(url: string, set: MigrationSet): Promise<{ created: boolean; applied: string[] }> {
  const created = await ensureDatabase(url);
  const pool = new pg.Pool(pgSettings(url, { max: 1 }));
  try {
    return { created, applied: await migrate(pool, set) };
  } finally {
    await pool.end();
  }
}

/** Drops the database `name` on the server `serverUrl` points at, closing its connections first. */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  const client = new pg.Client(pgSettings(serverUrl));
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
