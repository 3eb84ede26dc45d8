import assert from 'node:assert/strict';
import { enqueueBatch, enqueue } from '../stores/outbox/enqueue';
import { once } from 'node:events';
import { readMessage, readMessages } from '../stores/outbox/messages';
import { claimPending } from '../stores/outbox/state-machine';
import { ManualClock } from './support/clock';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { FaultProxy } from './support/fault-proxy';
import { workflowIdFor } from '../temporal/workflow-id';
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
    const claim = { limit: 7, leaseMs: 60_000, workflowIdPrefix: pipeline.config.workflowIdPrefix };
    const first = await claimPending(outbox, claim);
    assert.deepEqual(first.map((m) => m.id), ids.slice(0, 7));
    const second = await claimPending(outbox, claim);
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
    assert.ok(claimed.every((m) => m.executions === 1), 'no message was claimed twice');
    await pipeline.startWorker();
    const done = await pipeline.waitForStatus(ids, ['completed'], 60_000);
    assert.ok(done.every((m) => m.executions === 1));
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
      assert.ok(done.every((m) => m.executions === 1), 'each message ran once, under its first claim');
    } finally {
      await pipeline.stopDispatchers();
      await connection.close();
      await proxy.close();
    }
  });

  // The three cases below run on a clock the test moves: a lease of a minute ends when the test advances
  // the clock past it, and the test waits for the dispatcher's signals, not for time to pass.
  const LEASE_MS = 60_000;

  it('starts a message whose dispatcher died between claiming it and starting its workflow', async () => {
    pipeline = await TestPipeline.create();
    const clock = new ManualClock();
    const { outbox } = pipeline.stores;
    const id = await enqueue(outbox, { entity: 'order', key: 'orphan', data: { o: 1 } });
    // The claim commits, then the process "dies": no workflow is ever started.
    const [claim] = await claimPending(outbox, { limit: 10, leaseMs: LEASE_MS, workflowIdPrefix: pipeline.config.workflowIdPrefix, now: clock.now() });
    assert.equal(claim!.id, id);
    await pipeline.startWorker();
    const dispatcher = pipeline.createDispatcher({ leaseMs: LEASE_MS, clock: clock.now });
    assert.equal(await dispatcher.reconcileOnce(), 0, 'within its lease, the message is left alone');
    clock.advance(LEASE_MS);
    const reconciled = once(dispatcher.signals, 'reconciled');
    dispatcher.start();
    const [event] = await reconciled;
    assert.deepEqual(event, { messageId: id, execution: 1, action: 'restarted' });
    const [done] = await pipeline.waitForStatus([id], ['completed']);
    assert.equal(done!.executions, 2, 'the reconciler started a new execution');
  });

  it('starts a message again when an operator terminated its workflow before it recorded an outcome', async () => {
    pipeline = await TestPipeline.create();
    const clock = new ManualClock();
    const { outbox } = pipeline.stores;
    const id = await enqueue(outbox, { entity: 'order', key: 'terminated', data: { t: 1 } });
    const dispatcher = pipeline.createDispatcher({ leaseMs: LEASE_MS, clock: clock.now });
    const claimed = once(dispatcher.signals, 'claimed');
    assert.equal(await dispatcher.dispatchOnce(), 1);
    const [messages, by] = await claimed;
    assert.deepEqual([messages.map((m: { id: number }) => m.id), by], [[id], 'dispatch']);
    const handle = pipeline.client.workflow.getHandle(workflowIdFor(id, pipeline.config.workflowIdPrefix));
    await handle.terminate('operator');
    assert.equal((await readMessage(outbox, id))!.status, 'processing');
    await pipeline.startWorker();
    clock.advance(LEASE_MS);
    assert.equal(await dispatcher.reconcileOnce(), 1);
    const [done] = await pipeline.waitForStatus([id], ['completed']);
    assert.equal(done!.executions, 2);
  });

  it('leaves a message alone while its workflow is still running, even past the lease, and renews the lease', async () => {
    pipeline = await TestPipeline.create();
    const clock = new ManualClock();
    const { outbox } = pipeline.stores;
    const id = await enqueue(outbox, { entity: 'order', key: 'slow', data: { s: 1 } });
    const dispatcher = pipeline.createDispatcher({ leaseMs: LEASE_MS, clock: clock.now });
    await dispatcher.dispatchOnce();
    // No worker: the run stays open. The reconciler must renew the lease, not start another execution.
    const past = clock.advance(LEASE_MS + 1);
    const reconciled = once(dispatcher.signals, 'reconciled');
    assert.equal(await dispatcher.reconcileOnce(), 0);
    assert.deepEqual((await reconciled)[0], { messageId: id, execution: 1, action: 'renewed' });
    const message = await readMessage(outbox, id);
    assert.equal(message!.executions, 1);
    assert.equal(message!.leaseEndsAt!.getTime(), past.getTime() + LEASE_MS, 'lease renewed from the clock’s time');
    await pipeline.startWorker();
    await pipeline.waitForStatus([id], ['completed']);
  });

  it('redrives a failed message only once its backoff has passed on the clock', async () => {
    const backoffMs = 60_000;
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_REDRIVE_BASE_MS: String(backoffMs), OUTBOX_SYNC_REDRIVE_MAX_MS: String(backoffMs) } });
    const clock = new ManualClock();
    const { outbox } = pipeline.stores;
    const id = await enqueue(outbox, { entity: 'order', key: 'backoff', data: { b: 1 } });
    // Its first execution fails for a reason another may cure: the target is down.
    await pipeline.targetAdmin(`ALTER TABLE synced_records RENAME TO synced_records_away`);
    await pipeline.startWorker();
    const dispatcher = pipeline.createDispatcher({ clock: clock.now });
    await dispatcher.dispatchOnce();
    const [failed] = await pipeline.waitForStatus([id], ['failed'], 60_000);
    await pipeline.targetAdmin(`ALTER TABLE synced_records_away RENAME TO synced_records`);
    assert.equal(await dispatcher.redriveOnce(), 0, 'still backing off');
    // (+1: the database keeps microseconds, a Date only milliseconds.)
    clock.advance(failed!.nextRunAt.getTime() + 1 - clock.now().getTime());
    const claimed = once(dispatcher.signals, 'claimed');
    assert.equal(await dispatcher.redriveOnce(), 1);
    assert.equal((await claimed)[1], 'redrive');
    const [done] = await pipeline.waitForStatus([id], ['completed']);
    assert.equal(done!.executions, 2);
  });
});
