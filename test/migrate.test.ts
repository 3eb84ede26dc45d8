import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../config';
import { runMigrate } from '../client/migrate';
import { pgSettings } from '../database/connect';
import { databaseUrl, dropDatabase, getStack } from './support/stack';

describe('migrate', () => {
  const name = `outbox_sync_m_${randomBytes(4).toString('hex')}`;

  after(async () => {
    await dropDatabase(getStack().postgresUrl, `${name}_outbox`);
    await dropDatabase(getStack().postgresUrl, `${name}_target`);
  });

  it('creates both databases and schemas, and is harmless run twice at once and again later', async () => {
    const stack = getStack();
    const config = loadConfig({
      OUTBOX_DATABASE_URL: databaseUrl(stack.postgresUrl, `${name}_outbox`),
      TARGET_DATABASE_URL: databaseUrl(stack.postgresUrl, `${name}_target`),
      TEMPORAL_ADDRESS: stack.temporalAddress,
    });
    await Promise.all([runMigrate(config, { temporal: true }), runMigrate(config, { temporal: true })]);
    const lines: string[] = [];
    await runMigrate(config, { temporal: true, log: (line) => lines.push(line) });
    assert.deepEqual(lines, ['outbox: up to date', 'target: up to date', 'temporal: search attributes present']);

    for (const [db, table] of [
      [config.outboxDatabaseUrl, 'outbox_messages'],
      [config.targetDatabaseUrl, 'synced_records'],
    ]) {
      const client = new pg.Client(pgSettings(db!));
      await client.connect();
      try {
        const applied = await client.query('SELECT count(*)::int AS n FROM outbox_sync_migrations');
        assert.equal(applied.rows[0].n, 1, `one migration recorded once in ${db}`);
        const found = await client.query('SELECT to_regclass($1) AS t', [table]);
        assert.equal(found.rows[0].t, table);
      } finally {
        await client.end();
      }
    }
  });

  it('reaches Temporal with the TLS settings: TEMPORAL_TLS=true cannot talk to the plain-text dev server', async () => {
    const stack = getStack();
    const config = loadConfig({
      OUTBOX_DATABASE_URL: databaseUrl(stack.postgresUrl, `${name}_outbox`),
      TARGET_DATABASE_URL: databaseUrl(stack.postgresUrl, `${name}_target`),
      TEMPORAL_ADDRESS: stack.temporalAddress,
      TEMPORAL_TLS: 'true',
    });
    await assert.rejects(runMigrate(config, { temporal: true }));
  });
});
