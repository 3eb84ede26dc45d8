import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../config/config';
import { runMigrate } from '../client/commands/migrate';
import { pgSettings } from '../stores/postgres/connect';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../config/package-root';
import { ensureDatabase, migrateDatabase } from '../stores/postgres/migrate';
import { databaseUrl, dropDatabase, getStack } from './support/stack';
import { TestPipeline } from './support/pipeline';
import { childEnv, runCli } from './support/processes';
import { SEARCH_ATTRIBUTES } from '../temporal/search-attributes';
import { enqueueBatch } from '../stores/outbox/enqueue';
import { pruneCompleted } from '../stores/outbox/messages';
import { claimPending, recordCompleted, recordFailure, renewLease, retryMessages } from '../stores/outbox/state-machine';
import { readStreamCursor } from '../stores/outbox/stream-cursor';

/** The set's migration files, in the order they apply. */
function migrationFiles(set: string): string[] {
  return readdirSync(join(packageRoot, 'stores', 'migrations', set)).filter((name) => name.endsWith('.sql')).sort();
}

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
    assert.deepEqual(lines, ['outbox: up to date', 'target: up to date', `temporal: search attributes present in ${config.temporalNamespace}`]);

    for (const [db, table, migrations] of [
      [config.outboxDatabaseUrl, 'outbox_messages', migrationFiles('outbox').length],
      [config.targetDatabaseUrl, 'synced_records', 1],
    ] as const) {
      const client = new pg.Client(pgSettings(db));
      await client.connect();
      try {
        const applied = await client.query('SELECT count(*)::int AS n FROM outbox_sync_migrations');
        assert.equal(applied.rows[0].n, migrations, `each migration recorded once in ${db}`);
        const found = await client.query('SELECT to_regclass($1) AS t', [table]);
        assert.equal(found.rows[0].t, table);
      } finally {
        await client.end();
      }
    }
  });

  it('creates a missing namespace only when asked (--create-namespace), saying so, then registers the search attributes in it', async () => {
    const stack = getStack();
    const namespace = `${name}-ns`;
    const config = loadConfig({
      OUTBOX_DATABASE_URL: databaseUrl(stack.postgresUrl, `${name}_outbox`),
      TARGET_DATABASE_URL: databaseUrl(stack.postgresUrl, `${name}_target`),
      TEMPORAL_ADDRESS: stack.temporalAddress,
      TEMPORAL_NAMESPACE: namespace,
    });
    await assert.rejects(
      runMigrate(config, { temporal: true }),
      new Error(`TEMPORAL_NAMESPACE: namespace "${namespace}" does not exist at ${stack.temporalAddress}; create it (outbox-sync migrate --create-namespace), or have the cluster's admin create it`),
    );
    const lines: string[] = [];
    await runMigrate(config, { temporal: true, createNamespace: { retentionMs: 86_400_000 }, log: (line) => lines.push(line) });
    assert.deepEqual(lines.slice(2), [`temporal: created namespace ${namespace} (retention 1 d)`, `temporal: registered ${SEARCH_ATTRIBUTES.map((a) => a.name).join(', ')} in ${namespace}`]);
    const { namespaceInfo, config: settings } = await stack.connection.workflowService.describeNamespace({ namespace });
    assert.equal(namespaceInfo?.name, namespace);
    assert.equal(Number(settings?.workflowExecutionRetentionTtl?.seconds), 86_400);

    lines.length = 0;
    await runMigrate(config, { temporal: true, createNamespace: { retentionMs: 86_400_000 }, log: (line) => lines.push(line) });
    assert.deepEqual(lines.slice(2), [`temporal: search attributes present in ${namespace}`], 'run again, it makes nothing');
  });

  it('refuses a retention shorter than a day before touching anything: exit 2, one line', async () => {
    const run = await runCli(['migrate', '--create-namespace', '--namespace-retention', '12h'], childEnv({ OUTBOX_DATABASE_URL: 'postgres://127.0.0.1:1/nowhere' }));
    assert.equal(run.code, 2);
    assert.equal(run.stderr, `outbox-sync: --namespace-retention: "12h" is shorter than Temporal's minimum of 1d\n`);
  });

  describe('the status history (002)', () => {
    let pipeline: TestPipeline;
    beforeEach(async () => {
      pipeline = await TestPipeline.create();
    });
    afterEach(async () => {
      await pipeline.close();
    });

    it('records a batch claim as one history row per message, in one statement, with no actor', async () => {
      const { outbox } = pipeline.stores;
      const ids = await enqueueBatch(outbox, [1, 2, 3].map((n) => ({ entity: 'order', key: `k${n}`, data: { n } })));
      const claimed = await claimPending(outbox, { limit: 10, leaseMs: 60_000, workflowIdPrefix: 'wf-' });
      assert.deepEqual(claimed.map((m) => m.id), ids);
      const { rows } = await outbox.query(
        'SELECT message_id::int AS id, from_status, to_status, executions, error, actor, at FROM outbox_message_history ORDER BY id',
      );
      assert.deepEqual(
        rows.map(({ at: _at, ...row }) => row),
        ids.map((id) => ({ id, from_status: 'pending', to_status: 'processing', executions: 1, error: null, actor: null })),
      );
      // One statement: every row has its transaction's time.
      assert.equal(new Set(rows.map((r) => r.at.getTime())).size, 1);
    });

    it('records a failure with its reason, skips an update that changes neither status nor executions, and goes with a pruned message', async () => {
      const { outbox } = pipeline.stores;
      const [id] = await enqueueBatch(outbox, [{ entity: 'order', key: 'k', data: {} }]);
      const [claim] = await claimPending(outbox, { limit: 1, leaseMs: 60_000, workflowIdPrefix: 'wf-' });
      assert.ok(await renewLease(outbox, { id: id!, execution: claim!.execution, leaseMs: 60_000 }));
      await recordFailure(outbox, { id: id!, execution: 1 }, { error: 'target refused', kind: 'transient', retryInMs: 0, maxExecutions: 3 });
      const history = await outbox.query('SELECT to_status, error FROM outbox_message_history WHERE message_id = $1 ORDER BY id', [id]);
      assert.deepEqual(history.rows, [
        { to_status: 'processing', error: null },
        { to_status: 'failed', error: 'target refused' },
      ]);
      await retryMessages(outbox, { ids: [id!] }, { actor: 'cli' });
      const [again] = await claimPending(outbox, { limit: 1, leaseMs: 60_000, workflowIdPrefix: 'wf-' });
      await recordCompleted(outbox, { id: id!, execution: again!.execution });
      await outbox.query(`UPDATE outbox_messages SET completed_at = now() - interval '2 days' WHERE id = $1`, [id]);
      await pipeline.catchUpStreams();
      assert.equal(await pruneCompleted(outbox, 86_400_000), 1);
      const left = await outbox.query('SELECT count(*)::int AS n FROM outbox_message_history');
      assert.equal(left.rows[0].n, 0);
    });
  });

  it('upgrades an outbox at 002 to 003 in place: executions kept, the lease of a processing message moved to its own column, plain-SQL inserts unchanged', async () => {
    const url = databaseUrl(getStack().postgresUrl, `${name}_upgrade`);
    await ensureDatabase(url);
    const client = new pg.Client(pgSettings(url));
    await client.connect();
    try {
      // The outbox as 002 left it, by the files of that time.
      await client.query('CREATE TABLE outbox_sync_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      for (const file of ['001_outbox_messages.sql', '002_message_history.sql']) {
        await client.query(readFileSync(join(packageRoot, 'stores', 'migrations', 'outbox', file), 'utf8'));
        await client.query('INSERT INTO outbox_sync_migrations (name) VALUES ($1)', [`outbox/${file}`]);
      }
      const { rows } = await client.query<{ id: string }>(
        `INSERT INTO outbox_messages (entity, entity_key, data, status, attempts, available_at) VALUES
           ('order', 'running', '{}', 'processing', 2, '2030-01-01T00:00:00Z'),
           ('order', 'backing-off', '{}', 'failed', 1, '2030-01-02T00:00:00Z')
         RETURNING id`,
      );
      const [running, failed] = rows.map((r) => Number(r.id));
      // 003 and every migration after it.
      assert.deepEqual((await migrateDatabase(url, 'outbox')).applied, migrationFiles('outbox').filter((name) => name >= '003').map((name) => `outbox/${name}`));

      const after = await client.query(`SELECT id::int, status, executions, next_run_at, lease_ends_at FROM outbox_messages ORDER BY id`);
      assert.deepEqual(after.rows, [
        { id: running, status: 'processing', executions: 2, next_run_at: new Date('2030-01-01T00:00:00Z'), lease_ends_at: new Date('2030-01-01T00:00:00Z') },
        { id: failed, status: 'failed', executions: 1, next_run_at: new Date('2030-01-02T00:00:00Z'), lease_ends_at: null },
      ]);
      // A producer's plain-SQL insert names neither column, as before; the history trigger follows the rename.
      await client.query(`INSERT INTO outbox_messages (entity, entity_key, op, version, data) VALUES ('order', 'new', 'upsert', 1, '{}')`);
      await client.query(`UPDATE outbox_messages SET status = 'dead' WHERE id = $1`, [failed]);
      const history = await client.query('SELECT from_status, to_status, executions FROM outbox_message_history WHERE message_id = $1', [failed]);
      assert.deepEqual(history.rows, [{ from_status: 'failed', to_status: 'dead', executions: 1 }]);
    } finally {
      await client.end();
      await dropDatabase(getStack().postgresUrl, `${name}_upgrade`);
    }
  });

  it('upgrades an outbox at 003 to 004 with the history already there behind the streams’ cursor, and what follows ahead of it', async () => {
    const url = databaseUrl(getStack().postgresUrl, `${name}_upgrade4`);
    await ensureDatabase(url);
    const client = new pg.Client(pgSettings(url));
    await client.connect();
    try {
      await client.query('CREATE TABLE outbox_sync_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      for (const file of ['001_outbox_messages.sql', '002_message_history.sql', '003_executions_and_lease.sql']) {
        await client.query(readFileSync(join(packageRoot, 'stores', 'migrations', 'outbox', file), 'utf8'));
        await client.query('INSERT INTO outbox_sync_migrations (name) VALUES ($1)', [`outbox/${file}`]);
      }
      const { rows } = await client.query<{ id: string }>(`INSERT INTO outbox_messages (entity, entity_key, data) VALUES ('order', 'a', '{}'), ('order', 'b', '{}') RETURNING id`);
      const [done, later] = rows.map((r) => Number(r.id));
      await client.query(`UPDATE outbox_messages SET status = 'processing', executions = 1`);
      await client.query(`UPDATE outbox_messages SET status = 'completed' WHERE id = $1`, [done]);
      assert.deepEqual((await migrateDatabase(url, 'outbox')).applied, migrationFiles('outbox').filter((name) => name >= '004').map((name) => `outbox/${name}`));
      assert.equal((await readStreamCursor(client)).waiting, 0, 'the completion from before the upgrade is not appended again');
      await client.query(`UPDATE outbox_messages SET status = 'completed' WHERE id = $1`, [later]);
      assert.equal((await readStreamCursor(client)).waiting, 1, 'the one after it waits for the publisher');
      const xid = await client.query(`SELECT xid > '0'::xid8 AS real FROM outbox_message_history WHERE message_id = $1 AND to_status = 'completed'`, [later]);
      assert.equal(xid.rows[0].real, true);
    } finally {
      await client.end();
      await dropDatabase(getStack().postgresUrl, `${name}_upgrade4`);
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
