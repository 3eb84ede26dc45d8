/**
 * `dev --demo` (what `npm start` runs): demo orders synced while you watch, into tables the demo makes
 * as a user would — `orders` in the local target database and, when a MariaDB/MySQL answers locally,
 * `orders` in its database `outbox_sync_demo` — through a mapping file it writes, plus an entity without
 * a mapping, which lands in synced_records as before.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { Config } from '../../config/config';
import { enqueueBatch } from '../../stores/outbox/enqueue';
import { readMessages } from '../../stores/outbox/messages';
import type { MessageInput } from '../../stores/outbox/validate';
import { pgSettings } from '../../stores/postgres/connect';
import { parseTargetsMapping } from '../../stores/target/mapping';
import { readRecord } from '../../stores/target/synced-records';
import type { Stores } from '../../stores/stores';
import { workflowsUrl } from '../../temporal/ui-links';
import { withTargets } from '../command';

const DEMO_MYSQL_SERVER = 'mysql://root@127.0.0.1:3306';
const DEMO_MYSQL_DATABASE = 'outbox_sync_demo';

const POSTGRES_ORDERS = `CREATE TABLE IF NOT EXISTS orders (
  id text PRIMARY KEY, status varchar(20) NOT NULL, total_cents bigint NOT NULL, customer text,
  loaded_at timestamptz NOT NULL DEFAULT now())`;
const MYSQL_ORDERS = `CREATE TABLE IF NOT EXISTS orders (
  id varchar(100) PRIMARY KEY, status varchar(20) NOT NULL, total_cents bigint NOT NULL, customer varchar(100),
  deleted_at datetime(6) NULL, loaded_at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`;

/**
 * Unless OUTBOX_SYNC_TARGETS is set already, makes the demo's tables and mapping file (in `dataDir`) and
 * returns the settings with that mapping, its bookkeeping tables migrated.
 */
export async function prepareDemoTargets(config: Config, dataDir: string, log: (line: string) => void): Promise<Config> {
  if (config.targets) return config;
  const target = new pg.Client(pgSettings(config.targetDatabaseUrl));
  await target.connect();
  try {
    await target.query(POSTGRES_ORDERS);
  } finally {
    await target.end();
  }
  const databases: Record<string, string> = { target: config.targetDatabaseUrl };
  const entities: Record<string, unknown> = {
    order: { database: 'target', table: 'orders', key: 'id', columns: { status: 'status', total_cents: 'total', customer: 'customer.name' } },
  };
  const mysqlUrl = await demoMysql();
  if (mysqlUrl) {
    databases.reporting = mysqlUrl;
    entities.order_report = { database: 'reporting', table: 'orders', key: 'id', columns: { status: 'status', total_cents: 'total', customer: 'customer.name' }, onDelete: { softDelete: 'deleted_at' } };
  } else {
    log(`demo: no MariaDB/MySQL answers at ${DEMO_MYSQL_SERVER.replace('root@', '')}; syncing into PostgreSQL only`);
  }
  const file = join(dataDir, 'demo-targets.json');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify({ databases, entities }, null, 2)}\n`);
  const demo = { ...config, targetsFile: file, targets: parseTargetsMapping({ databases, entities }, process.env, `the demo's mapping (${file})`) };
  await withTargets(demo, async (targets) => {
    await targets.migrate();
    await targets.requireReady();
  });
  log(`demo: entity order → orders in ${new URL(config.targetDatabaseUrl).pathname.slice(1)}${mysqlUrl ? `, order_report → orders in MariaDB/MySQL ${DEMO_MYSQL_DATABASE}` : ''} (mapping: ${file})`);
  return demo;
}

/** The demo's MariaDB/MySQL database, made if a local server answers; null when none does. */
async function demoMysql(): Promise<string | null> {
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({ uri: DEMO_MYSQL_SERVER, connectTimeout: 1_000 });
  } catch {
    return null;
  }
  try {
    await connection.query(`CREATE DATABASE IF NOT EXISTS ${DEMO_MYSQL_DATABASE} CHARACTER SET utf8mb4`);
    await connection.query(`USE ${DEMO_MYSQL_DATABASE}`);
    await connection.query(MYSQL_ORDERS);
    return `${DEMO_MYSQL_SERVER}/${DEMO_MYSQL_DATABASE}`;
  } finally {
    await connection.end();
  }
}

/** Orders with two versions each (sent newest first for some), and a delete, synced while you watch. */
export async function runDemo(stores: Stores, config: Config): Promise<void> {
  const run = Date.now().toString(36).slice(-4);
  const entities = ['order', ...(config.targets?.entities.has('order_report') ? ['order_report'] : []), 'invoice'];
  const messages: MessageInput[] = [];
  for (const entity of entities) {
    for (let n = 1; n <= 4; n++) {
      const key = `demo-${run}-${n}`;
      const v1: MessageInput = { entity, key, version: 1, data: { status: 'placed', total: n * 1000, customer: { name: `customer ${n}` } }, source: 'demo' };
      const v2: MessageInput = { entity, key, version: 2, data: { status: 'paid', total: n * 1000, customer: { name: `customer ${n}` } }, source: 'demo' };
      messages.push(...(n % 2 === 0 ? [v2, v1] : [v1, v2]));
    }
    messages.push({ entity, key: `demo-${run}-4`, op: 'delete', version: 3, source: 'demo' });
  }
  const ids = await enqueueBatch(stores.outbox, messages, { maxDataBytes: config.maxDataBytes });
  console.log(`Enqueued ${ids.length} demo messages (${ids[0]}…${ids[ids.length - 1]}); waiting for them to finish…`);

  const deadline = Date.now() + 120_000;
  let rows = await readMessages(stores.outbox, ids);
  while (rows.some((m) => m.status === 'pending' || m.status === 'processing') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    rows = await readMessages(stores.outbox, ids);
  }
  console.log('\n  id  entity        key          op      version  status      target');
  for (const m of rows) {
    const place = stores.targets.placeOf(m.entity);
    console.log(`  ${String(m.id).padStart(3)} ${m.entity.padEnd(13)} ${m.key.padEnd(12)} ${String(m.op).padEnd(7)} ${m.version.padStart(7)}  ${m.status.padEnd(10)}  ${place.database} ${place.table}`);
  }
  await printTables(stores, config, run);
  const completed = rows.filter((m) => m.status === 'completed').length;
  console.log(`\n${completed} of ${rows.length} demo messages completed.`);
  console.log(`Find one in the Temporal UI: ${workflowsUrl(config, `OutboxMessageId="${ids[0]}"`)}\n`);
}

/** What each table holds now, read as a user would read it. */
async function printTables(stores: Stores, config: Config, run: string): Promise<void> {
  const like = `demo-${run}-%`;
  const { rows: orders } = await stores.target.query('SELECT id, status, total_cents, customer FROM orders WHERE id LIKE $1 ORDER BY id', [like]);
  console.log(`\norders in PostgreSQL (${new URL(config.targetDatabaseUrl).pathname.slice(1)}): the newest version of each order; the deleted one is gone`);
  for (const o of orders) console.log(`  ${o.id.padEnd(12)} ${String(o.status).padEnd(7)} ${String(o.total_cents).padStart(6)}  ${o.customer}`);
  const reporting = config.targets?.databases.get('reporting');
  if (reporting) {
    const connection = await mysql.createConnection({ uri: reporting.url, dateStrings: true });
    try {
      const [rows] = await connection.query<mysql.RowDataPacket[]>('SELECT id, status, total_cents, customer, deleted_at FROM orders WHERE id LIKE ? ORDER BY id', [like]);
      console.log(`\norders in MariaDB/MySQL (${DEMO_MYSQL_DATABASE}): the same, with the delete as a soft delete`);
      for (const o of rows) console.log(`  ${String(o.id).padEnd(12)} ${String(o.status).padEnd(7)} ${String(o.total_cents).padStart(6)}  ${o.customer}${o.deleted_at ? `  deleted at ${o.deleted_at} UTC` : ''}`);
    } finally {
      await connection.end();
    }
  }
  console.log('\ninvoice (no mapping) in synced_records:');
  for (let n = 1; n <= 4; n++) {
    const record = await readRecord(stores.target, 'invoice', `demo-${run}-${n}`);
    console.log(`  demo-${run}-${n}  ${record ? (record.deleted ? `v${record.version} (deleted)` : `v${record.version} ${JSON.stringify(record.data)}`) : '-'}`);
  }
}
