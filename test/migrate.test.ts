import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../config/config';
import { runMigrate } from '../client/commands/migrate';
import { pgSettings } from '../stores/postgres/connect';
import { databaseUrl, dropDatabase, getStack } from './support/stack';
import { TestPipeline } from './support/pipeline';
import { enqueueBatch } from '../stores/outbox/enqueue';
import { claimPending, markCompleted, markFailed, pruneCompleted, renewLease, retryMessages } from '../stores/outbox/messages';

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

    for (const [db, table, migrations] of [
      [config.outboxDatabaseUrl, 'outbox_messages', 2],
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
      const claimed = await claimPending(outbox, 10, 60_000, 'wf-');
      assert.deepEqual(claimed.map((m) => m.id), ids);
      const { rows } = await outbox.query(
        'SELECT message_id::int AS id, from_status, to_status, attempts, error, actor, at FROM outbox_message_history ORDER BY id',
      );
      assert.deepEqual(
        rows.map(({ at: _at, ...row }) => row),
        ids.map((id) => ({ id, from_status: 'pending', to_status: 'processing', attempts: 1, error: null, actor: null })),
      );
      // One statement: every row has its transaction's time.
      assert.equal(new Set(rows.map((r) => r.at.getTime())).size, 1);
    });

    it('records a failure with its reason, skips an update that changes neither status nor attempts, and goes with a pruned message', async () => {
      const { outbox } = pipeline.stores;
      const [id] = await enqueueBatch(outbox, [{ entity: 'order', key: 'k', data: {} }]);
      const [claim] = await claimPending(outbox, 1, 60_000, 'wf-');
      assert.ok(await renewLease(outbox, id!, claim!.attempt, 60_000));
      await markFailed(outbox, id!, 1, { error: 'target refused', kind: 'transient', retryInMs: 0 });
      const history = await outbox.query('SELECT to_status, error FROM outbox_message_history WHERE message_id = $1 ORDER BY id', [id]);
      assert.deepEqual(history.rows, [
        { to_status: 'processing', error: null },
        { to_status: 'failed', error: 'target refused' },
      ]);
      await retryMessages(outbox, { ids: [id!] }, { actor: 'cli' });
      const [again] = await claimPending(outbox, 1, 60_000, 'wf-');
      await markCompleted(outbox, id!, again!.attempt);
      await outbox.query(`UPDATE outbox_messages SET completed_at = now() - interval '2 days' WHERE id = $1`, [id]);
      assert.equal(await pruneCompleted(outbox, 86_400_000), 1);
      const left = await outbox.query('SELECT count(*)::int AS n FROM outbox_message_history');
      assert.equal(left.rows[0].n, 0);
    });
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
