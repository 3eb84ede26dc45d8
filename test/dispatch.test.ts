import assert from 'node:assert/strict';
import { enqueueBatch, enqueue } from '../stores/outbox/enqueue';
import { claimPending, readMessage, readMessages } from '../stores/outbox/messages';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { FaultProxy } from './support/fault-proxy';
import { workflowIdFor } from '../stores/outbox/state-machine';
import { TestPipeline, waitFor } from './support/pipeline';

describe('dispatching: each message started once, and none left behind by a crash', () => {
  let pipeline: TestPipeline;

  afterEach(async () => {
    await pipeline?.close();
  });

  async function runsPerWorkflow(): Promise<Map<string, number>> {
    const runs = new Map<string, number>();
    for await (const e of pipeline.client.workflow.list({ query: `TaskQueue = "${pipeline.config.taskQueue}"` })) {
      runs.set(e.workflowId, (runs.get(e.workflowId) ?? 0) + 1);
    }
    return runs;
  }

  it('claims at most one batch per pass, oldest first', async () => {
    pipeline = await TestPipeline.create();
    const { outbox } = pipeline.stores;
    const ids = await enqueueBatch(outbox, Array.from({ length: 40 }, (_, i) => ({ entity: 'order', key: String(i), data: { i } })));
    const first = await claimPending(outbox, 7, 60_000, pipeline.config.workflowIdPrefix);
    assert.deepEqual(first.map((m) => m.id), ids.slice(0, 7));
    const second = await claimPending(outbox, 7, 60_000, pipeline.config.workflowIdPrefix);
    assert.deepEqual(second.map((m) => m.id), ids.slice(7, 14));
    const processing = (await readMessages(outbox, ids)).filter((m) => m.status === 'processing');
    assert.equal(processing.length, 14);
  });

  it('starts each message exactly once with two dispatchers over the same outbox', async () => {
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_CLAIM_BATCH: '7' } });
    const messages = Array.from({ length: 150 }, (_, i) => ({ entity: 'order', key: String(i), data: { i } }));
    const ids = await enqueueBatch(pipeline.stores.outbox, messages);
    // Both claim side by side in small batches; then a worker runs what they started.
    pipeline.startDispatcher();
    pipeline.startDispatcher();
    const claimed = await pipeline.waitForStatus(ids, ['processing']);
    assert.ok(claimed.every((m) => m.attempts === 1), 'no message was claimed twice');
    await pipeline.startWorker();
    const done = await pipeline.waitForStatus(ids, ['completed'], 60_000);
    assert.ok(done.every((m) => m.attempts === 1));
    const runs = await waitFor('every execution in visibility', async () => {
      const found = await runsPerWorkflow();
      return found.size === ids.length ? found : undefined;
    });
    assert.ok([...runs.values()].every((n) => n === 1), 'one run per message');
  });

  it('wakes on a new message through LISTEN/NOTIFY without waiting for the poll', async () => {
    // A poll interval far longer than the test: only the notification can wake the dispatcher in time.
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_POLL_MS: '600000' } });
    await pipeline.startWorker();
    pipeline.startDispatcher();
    // Let the first (empty) pass finish and the LISTEN connection open.
    await waitFor('the LISTEN connection', async () => {
      const { rows } = await pipeline.stores.outbox.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
      );
      return rows[0].n > 0 ? true : undefined;
    });
    const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: 'wake', data: { w: 1 } });
    await pipeline.waitForStatus([id], ['completed'], 20_000);
  });

  it('claims no more while Temporal refuses starts, and starts what it claimed once Temporal is back', async () => {
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_CLAIM_BATCH: '10', OUTBOX_SYNC_POLL_MS: '200' } });
    const { outbox } = pipeline.stores;
    const ids = await enqueueBatch(outbox, Array.from({ length: 50 }, (_, i) => ({ entity: 'order', key: String(i), data: { i } })));
    // The dispatcher reaches Temporal through a proxy that the test cuts.
    const temporal = pipeline.config.temporalAddress.split(':');
    const proxy = await FaultProxy.start(temporal[0]!, Number(temporal[1]));
    // Few gRPC retries, so that each refused start fails within a second rather than after the SDK's
    // default of ten tries with backoff.
    const connection = await Connection.connect({
      address: `127.0.0.1:${proxy.port}`,
      interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 2 }))],
    });
    try {
      proxy.refuse();
      const dispatcher = pipeline.createDispatcher({}, new Client({ connection, namespace: pipeline.config.temporalNamespace }));
      assert.equal(await dispatcher.dispatchOnce(), 0, 'its starts failed');
      assert.equal(await dispatcher.dispatchOnce(), 0, 'it retried them and claimed nothing new');
      const processing = (await readMessages(outbox, ids)).filter((m) => m.status === 'processing');
      assert.equal(processing.length, 10, 'only the first batch was claimed');

      await proxy.restore();
      await pipeline.startWorker();
      dispatcher.start();
      const done = await pipeline.waitForStatus(ids, ['completed'], 60_000);
      assert.ok(done.every((m) => m.attempts === 1), 'each message ran once, under its first claim');
    } finally {
      await pipeline.stopDispatchers();
      await connection.close();
      await proxy.close();
    }
  });

  it('starts a message whose dispatcher died between claiming it and starting its workflow', async () => {
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_LEASE_MS: '300' } });
    const { outbox } = pipeline.stores;
    const id = await enqueue(outbox, { entity: 'order', key: 'orphan', data: { o: 1 } });
    // The claim commits, then the process "dies": no workflow is ever started.
    const [claim] = await claimPending(outbox, 10, 300, pipeline.config.workflowIdPrefix);
    assert.equal(claim!.id, id);
    await pipeline.startWorker();
    pipeline.startDispatcher();
    const [done] = await pipeline.waitForStatus([id], ['completed']);
    assert.equal(done!.attempts, 2, 'the reconciler started a new execution');
  });

  it('starts a message again when an operator terminated its workflow before it recorded an outcome', async () => {
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_LEASE_MS: '300' } });
    const { outbox } = pipeline.stores;
    const id = await enqueue(outbox, { entity: 'order', key: 'terminated', data: { t: 1 } });
    const dispatcher = pipeline.createDispatcher();
    assert.equal(await dispatcher.dispatchOnce(), 1);
    const handle = pipeline.client.workflow.getHandle(workflowIdFor(id, pipeline.config.workflowIdPrefix));
    await handle.terminate('operator');
    assert.equal((await readMessage(outbox, id))!.status, 'processing');
    await pipeline.startWorker();
    await waitFor('the lease to expire', async () => ((await dispatcher.reconcileOnce()) === 1 ? true : undefined), 10_000);
    const [done] = await pipeline.waitForStatus([id], ['completed']);
    assert.equal(done!.attempts, 2);
  });

  it('leaves a message alone while its workflow is still running, even past the lease', async () => {
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_LEASE_MS: '100' } });
    const { outbox } = pipeline.stores;
    const id = await enqueue(outbox, { entity: 'order', key: 'slow', data: { s: 1 } });
    const dispatcher = pipeline.createDispatcher();
    await dispatcher.dispatchOnce();
    // No worker: the run stays open. The reconciler must renew the lease, not start another execution.
    await waitFor('the lease to expire', async () => {
      const m = await readMessage(outbox, id);
      return m!.availableAt.getTime() < Date.now() - 50 ? true : undefined;
    });
    assert.equal(await dispatcher.reconcileOnce(), 0);
    const message = await readMessage(outbox, id);
    assert.equal(message!.attempts, 1);
    assert.ok(message!.availableAt.getTime() > Date.now(), 'lease renewed');
    await pipeline.startWorker();
    await pipeline.waitForStatus([id], ['completed']);
  });
});
