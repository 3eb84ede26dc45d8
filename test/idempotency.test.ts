import assert from 'node:assert/strict';
import { IdempotencyConflictError, enqueue, enqueueBatch } from '../stores/outbox/enqueue';
import { InvalidMessageError } from '../stores/outbox/validate';
import { readMessage } from '../stores/outbox/messages';
import { readRecord } from '../stores/target/synced-records';
import { workflowIdFor } from '../temporal/workflow-id';
import { startExecution } from '../dispatcher/start-execution';
import { dispatcherSettings } from '../dispatcher/run-dispatcher';
import { TestPipeline } from './support/pipeline';

describe('idempotent intake and idempotent executions', () => {
  let pipeline: TestPipeline;

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
  });

  afterEach(async () => {
    await pipeline.close();
  });

  async function count(): Promise<number> {
    const { rows } = await pipeline.stores.outbox.query('SELECT count(*)::int AS n FROM outbox_messages');
    return rows[0].n;
  }

  describe('the producer API', () => {
    it('stores one message for the same idempotency key sent twice, answering the first id', async () => {
      const { outbox } = pipeline.stores;
      const message = { entity: 'order', key: '1', data: { a: 1, b: 2 }, idempotencyKey: 'req-1', source: 'shop' };
      const first = await enqueue(outbox, message);
      // Same body with its keys in another order is the same body.
      const again = await enqueue(outbox, { ...message, data: { b: 2, a: 1 } });
      assert.equal(again, first);
      assert.equal(await count(), 1);
    });

    it('refuses the same idempotency key with a different body, storing nothing', async () => {
      const { outbox } = pipeline.stores;
      const first = await enqueue(outbox, { entity: 'order', key: '1', data: { a: 1 }, idempotencyKey: 'req-1', source: 'shop' });
      await assert.rejects(
        enqueue(outbox, { entity: 'order', key: '1', data: { a: 2 }, idempotencyKey: 'req-1', source: 'shop' }),
        (err: unknown) => err instanceof IdempotencyConflictError && err.existingId === first && /req-1/.test(err.message),
      );
      assert.equal(await count(), 1);
    });

    it('scopes idempotency keys to their source', async () => {
      const { outbox } = pipeline.stores;
      const a = await enqueue(outbox, { entity: 'order', key: '1', data: { a: 1 }, idempotencyKey: 'k', source: 'device-a' });
      const b = await enqueue(outbox, { entity: 'order', key: '1', data: { a: 2 }, idempotencyKey: 'k', source: 'device-b' });
      assert.notEqual(a, b);
      assert.equal(await count(), 2);
    });

    it('stores a batch all or none: a conflicting key in it stores none of the batch', async () => {
      const { outbox } = pipeline.stores;
      await enqueue(outbox, { entity: 'order', key: '1', data: { a: 1 }, idempotencyKey: 'taken' });
      await assert.rejects(
        enqueueBatch(outbox, [
          { entity: 'order', key: '2', data: { a: 2 } },
          { entity: 'order', key: '3', data: { a: 3 }, idempotencyKey: 'fresh' },
          { entity: 'order', key: '1', data: { a: 9 }, idempotencyKey: 'taken' },
        ]),
        IdempotencyConflictError,
      );
      assert.equal(await count(), 1);
      // An invalid message anywhere in a batch is refused before anything is stored.
      await assert.rejects(
        enqueueBatch(outbox, [{ entity: 'order', key: '4', data: { a: 4 } }, { entity: 'order', key: '5', data: [] as never }]),
        (err: unknown) => err instanceof InvalidMessageError && err.field === '[1].data',
      );
      assert.equal(await count(), 1);
      const ids = await enqueueBatch(outbox, [
        { entity: 'order', key: '2', data: { a: 2 } },
        { entity: 'order', key: '1', data: { a: 1 }, idempotencyKey: 'taken' },
      ]);
      assert.equal(ids.length, 2);
      assert.equal(ids[1], 1, 'the repeat answers the first id, in its place in the batch');
      assert.equal(await count(), 2);
    });

    it('commits or rolls back with the producer’s own transaction', async () => {
      const { outbox } = pipeline.stores;
      await outbox.query('CREATE TABLE orders (id text PRIMARY KEY, total int)');
      const client = await outbox.connect();
      try {
        await client.query('BEGIN');
        await client.query(`INSERT INTO orders VALUES ('o1', 10)`);
        await enqueue(client, { entity: 'order', key: 'o1', data: { total: 10 } });
        await client.query('ROLLBACK');
        assert.equal(await count(), 0);

        await client.query('BEGIN');
        await client.query(`INSERT INTO orders VALUES ('o2', 20)`);
        await enqueueBatch(client, [
          { entity: 'order', key: 'o2', data: { total: 20 }, idempotencyKey: 'o2' },
          { entity: 'order', key: 'o2-line', data: { n: 1 }, idempotencyKey: 'o2-line' },
        ]);
        // A batch that conflicts rolls back to its savepoint and leaves the producer's transaction usable.
        await assert.rejects(
          enqueueBatch(client, [
            { entity: 'order', key: 'x', data: { n: 1 } },
            { entity: 'order', key: 'o2', data: { total: 21 }, idempotencyKey: 'o2' },
          ]),
          IdempotencyConflictError,
        );
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      assert.equal(await count(), 2);
      const { rows } = await outbox.query('SELECT count(*)::int AS n FROM orders');
      assert.equal(rows[0].n, 1);
    });
  });

  describe('workflow starts', () => {
    it('treats a second start of a running message’s workflow as the same execution', async () => {
      const { outbox } = pipeline.stores;
      const id = await enqueue(outbox, { entity: 'order', key: '1', data: { a: 1 } });
      const dispatcher = pipeline.createDispatcher();
      assert.equal(await dispatcher.dispatchOnce(), 1);
      const settings = dispatcherSettings(pipeline.config);
      const claim = { id, entity: 'order', key: '1', execution: 1 };
      // No worker runs, so the first run is still open: both starts return it.
      const runA = await startExecution(pipeline.client, claim, settings);
      const runB = await startExecution(pipeline.client, claim, settings);
      assert.equal(runA, runB);
      await pipeline.startWorker();
      await pipeline.waitForStatus([id], ['completed']);
      const runs = [];
      for await (const e of pipeline.client.workflow.list({ query: `WorkflowId = "${workflowIdFor(id, settings.workflowIdPrefix)}"` })) runs.push(e);
      assert.equal(runs.length, 1);
    });

    it('makes a start after completion a no-op that changes nothing', async () => {
      const { outbox, target } = pipeline.stores;
      await pipeline.startWorker();
      pipeline.startDispatcher();
      const id = await enqueue(outbox, { entity: 'order', key: '1', version: 3, data: { a: 1 } });
      const [before] = await pipeline.waitForStatus([id], ['completed']);
      const settings = dispatcherSettings(pipeline.config);
      // The outcome is recorded just before the run closes; wait for the close, or the start joins it.
      await pipeline.client.workflow.getHandle(workflowIdFor(id, settings.workflowIdPrefix)).result();
      const recordBefore = await readRecord(target, 'order', '1');
      const syncedAt = async () => (await target.query('SELECT synced_at FROM synced_records')).rows[0].synced_at;
      const syncedBefore = await syncedAt();

      const runId = await startExecution(pipeline.client, { id, entity: 'order', key: '1', execution: 1 }, settings);
      const result = await pipeline.client.workflow.getHandle(workflowIdFor(id, settings.workflowIdPrefix), runId).result();
      assert.deepEqual(result, { status: 'skipped' });

      const after = await readMessage(outbox, id);
      assert.equal(after!.status, 'completed');
      assert.equal(after!.executions, before!.executions);
      assert.deepEqual(after!.updatedAt, before!.updatedAt);
      assert.deepEqual(await readRecord(target, 'order', '1'), recordBefore);
      assert.deepEqual(await syncedAt(), syncedBefore);
    });
  });
});
