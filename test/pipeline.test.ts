import assert from 'node:assert/strict';
import { enqueue, enqueueBatch } from '../stores/outbox/enqueue';
import { readMessage } from '../stores/outbox/messages';
import { readRecord } from '../stores/target/synced-records';
import { workflowIdFor } from '../temporal/workflow-id';
import { TestPipeline, waitFor } from './support/pipeline';

describe('the pipeline, end to end on PostgreSQL, Redis and Temporal', () => {
  let pipeline: TestPipeline;

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
  });

  afterEach(async () => {
    await pipeline.close();
  });

  it('moves a message pending → processing → completed and writes it into the target', async () => {
    const { outbox, target } = pipeline.stores;
    const id = await enqueue(outbox, { entity: 'order', key: '42', version: 7, data: { total: 99.5, items: ['a', 'b'] } });
    assert.equal((await readMessage(outbox, id))!.status, 'pending');

    // With no worker yet, a dispatcher claims the message and starts its workflow, which waits.
    pipeline.startDispatcher();
    const claimed = await pipeline.waitForStatus([id], ['processing']);
    assert.equal(claimed[0]!.executions, 1);
    assert.equal(claimed[0]!.workflowId, workflowIdFor(id, pipeline.config.workflowIdPrefix));

    await pipeline.startWorker();
    const [done] = await pipeline.waitForStatus([id], ['completed']);
    assert.equal(done!.lastError, null);
    assert.ok(done!.completedAt);
    assert.deepEqual(await readRecord(target, 'order', '42'), {
      entity: 'order',
      key: '42',
      version: '7',
      data: { total: 99.5, items: ['a', 'b'] },
      deleted: false,
      messageId: id,
    });
  });

  it('applies a delete as a tombstone in the target', async () => {
    const { outbox, target } = pipeline.stores;
    await pipeline.startWorker();
    pipeline.startDispatcher();
    const created = await enqueue(outbox, { entity: 'customer', key: 'c-1', version: 1, data: { name: 'Ada' } });
    await pipeline.waitForStatus([created], ['completed']);
    const deleted = await enqueue(outbox, { entity: 'customer', key: 'c-1', op: 'delete', version: 2 });
    await pipeline.waitForStatus([deleted], ['completed']);
    const record = await readRecord(target, 'customer', 'c-1');
    assert.equal(record!.deleted, true);
    assert.equal(record!.data, null);
    assert.equal(record!.version, '2');
  });

  it('syncs a message a producer inserted with plain SQL, its version defaulting to its id', async () => {
    const { outbox, target } = pipeline.stores;
    await pipeline.startWorker();
    pipeline.startDispatcher();
    const { rows } = await outbox.query(
      `INSERT INTO outbox_messages (entity, entity_key, data) VALUES ('invoice', 'INV-9', '{"paid": true}') RETURNING id`,
    );
    const id = Number(rows[0].id);
    await pipeline.waitForStatus([id], ['completed']);
    const record = await readRecord(target, 'invoice', 'INV-9');
    assert.equal(record!.version, String(id));
    assert.deepEqual(record!.data, { paid: true });
  });

  it('publishes each completion on the success stream', async () => {
    const { outbox } = pipeline.stores;
    await pipeline.startWorker();
    pipeline.startDispatcher();
    const ids = await enqueueBatch(outbox, [
      { entity: 'order', key: '1', data: { n: 1 } },
      { entity: 'order', key: '2', data: { n: 2 } },
    ]);
    await pipeline.waitForStatus(ids, ['completed']);
    const published = await waitFor('two stream entries', async () => {
      const found = await pipeline.streamEntries('succeeded');
      return found.length >= 2 ? found : undefined;
    });
    assert.deepEqual(published.map((f) => Number(f.messageId)).sort(), ids);
    assert.ok(published.every((f) => f.status === 'completed' && f.entity === 'order'));
  });

  it('makes every execution findable in Temporal by its message id', async () => {
    const { outbox } = pipeline.stores;
    await pipeline.startWorker();
    pipeline.startDispatcher();
    const id = await enqueue(outbox, { entity: 'order', key: 'search-me', data: { n: 1 } });
    await pipeline.waitForStatus([id], ['completed']);
    const executions = await waitFor('the execution in visibility', async () => {
      const found = [];
      for await (const execution of pipeline.client.workflow.list({ query: `OutboxMessageId = "${id}" AND TaskQueue = "${pipeline.config.taskQueue}"` })) found.push(execution);
      return found.length > 0 && found.every((e) => e.status.name === 'COMPLETED') ? found : undefined;
    });
    assert.equal(executions.length, 1);
    assert.equal(executions[0]!.workflowId, workflowIdFor(id, pipeline.config.workflowIdPrefix));
    assert.equal(executions[0]!.status.name, 'COMPLETED');
    const byKey = [];
    for await (const e of pipeline.client.workflow.list({ query: `OutboxEntity = "order" AND OutboxKey = "search-me" AND TaskQueue = "${pipeline.config.taskQueue}"` })) byKey.push(e);
    assert.equal(byKey.length, 1);
  });
});

