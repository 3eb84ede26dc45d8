/**
 * The activities one at a time, on the real stores, through the SDK's mock activity context: the cases a
 * whole-pipeline run cannot time on purpose (a cache flushed between the two steps, a notification lost
 * after the outcome was recorded, a late execution).
 */
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../activities/activities';
import { enqueue } from '../stores/outbox/enqueue';
import { readMessage } from '../stores/outbox/messages';
import { claimPending } from '../stores/outbox/state-machine';
import { readRecord } from '../stores/target/synced-records';
import { activitySettings } from '../worker/worker';
import { TestPipeline, waitFor } from './support/pipeline';

describe('activities on the real stores', () => {
  let pipeline: TestPipeline;
  let activities: ReturnType<typeof createActivities>;
  const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  /** Runs one activity in the mock activity context, typed by the activity itself. */
  const run = <A, R>(activity: (input: A) => Promise<R>, input: A): Promise<R> => env.run(activity as never, input as never) as Promise<R>;

  beforeEach(async () => {
    pipeline = await TestPipeline.create({ proxyRedis: true });
    activities = createActivities({ ...pipeline.stores, settings: activitySettings(pipeline.config) });
  });

  afterEach(async () => {
    await pipeline.close();
  });

  /** Enqueues and claims a message, as a dispatcher would; returns the claim. */
  async function claimed(message: Parameters<typeof enqueue>[1]) {
    const id = await enqueue(pipeline.stores.outbox, message);
    const claims = await claimPending(pipeline.stores.outbox, { limit: 10, leaseMs: 60_000, workflowIdPrefix: pipeline.config.workflowIdPrefix });
    const claim = claims.find((c) => c.id === id)!;
    return { messageId: id, execution: claim.execution };
  }

  it('persists from the outbox copy when the cache lost the staged data (flush, eviction, restart)', async () => {
    const claim = await claimed({ entity: 'order', key: '1', version: 2, data: { from: 'outbox' } });
    const staged = await run(activities.stageToCache, claim);
    assert.equal(staged.state, 'staged');
    await pipeline.stores.redis.del(pipeline.stores.cache.recordKey('order', '1'));
    if (staged.state !== 'staged') return;
    const result = await run(activities.persistToTarget, { ...claim, entity: staged.entity, key: staged.key, version: staged.version, op: staged.op });
    assert.deepEqual(result, { applied: true, from: 'outbox' });
    assert.deepEqual((await readRecord(pipeline.stores.target, 'order', '1'))!.data, { from: 'outbox' });
  });

  it('persists from the cache while it holds this message’s copy', async () => {
    const claim = await claimed({ entity: 'order', key: '2', data: { n: 2 } });
    const staged = await run(activities.stageToCache, claim);
    if (staged.state !== 'staged') assert.fail('not staged');
    const result = await run(activities.persistToTarget, { ...claim, entity: 'order', key: '2', version: staged.version, op: 'upsert' });
    assert.deepEqual(result, { applied: true, from: 'cache' });
  });

  it('persists from the outbox copy when Redis is unreachable', async () => {
    const claim = await claimed({ entity: 'order', key: '3', version: 1, data: { n: 3 } });
    pipeline.redisProxy!.refuse();
    const result = await run(activities.persistToTarget, { ...claim, entity: 'order', key: '3', version: '1', op: 'upsert' });
    assert.deepEqual(result, { applied: true, from: 'outbox' });
    await pipeline.redisProxy!.restore();
  });

  it('records an outcome while Redis is unreachable, and leaves its stream entry to the publisher', async () => {
    const claim = await claimed({ entity: 'order', key: '4', data: { n: 4 } });
    pipeline.redisProxy!.refuse();
    assert.deepEqual(await run(activities.recordOutcome, { ...claim, outcome: 'completed' }), { status: 'completed' });
    assert.equal((await readMessage(pipeline.stores.outbox, claim.messageId))!.status, 'completed', 'the outbox has it');
    await pipeline.redisProxy!.restore();
    assert.deepEqual(await pipeline.streamEntries('succeeded'), [], 'the activity appends nothing itself');
    // The dispatcher's publisher appends it from the outbox's record of transitions.
    const publisher = pipeline.createDispatcher();
    await waitFor('the publisher to append it', async () => {
      const pass = await publisher.publishOnce();
      return !pass.busy && pass.appended > 0 ? pass : undefined;
    });
    const entries = await pipeline.streamEntries('succeeded');
    assert.deepEqual(
      entries.map((e) => [e.messageId, e.status, e.attempt]),
      [[String(claim.messageId), 'completed', String(claim.execution)]],
    );
  });

  it('does nothing for an execution that no longer holds the claim', async () => {
    const claim = await claimed({ entity: 'order', key: '5', data: { n: 5 } });
    const late = { messageId: claim.messageId, execution: claim.execution - 1 };
    assert.deepEqual(await run(activities.stageToCache, late), { state: 'not-claimed' });
    assert.equal(await pipeline.stores.cache.read('order', '5'), null, 'nothing staged');
    assert.deepEqual(await run(activities.recordOutcome, { ...late, outcome: 'completed' }), { status: 'not-claimed' });
    assert.equal((await readMessage(pipeline.stores.outbox, claim.messageId))!.status, 'processing');
  });

  it('takes the execution under the name workflows started by earlier versions give it (attempt)', async () => {
    const claim = await claimed({ entity: 'order', key: '5b', data: { n: 5 } });
    const earlier = { messageId: claim.messageId, attempt: claim.execution } as unknown as typeof claim;
    assert.equal((await run(activities.stageToCache, earlier)).state, 'staged');
    assert.deepEqual(await run(activities.recordOutcome, { ...earlier, outcome: 'completed' }), { status: 'completed' });
  });

  it('refuses data the target cannot take as permanent (non-retryable), naming the reason', async () => {
    await pipeline.targetAdmin(`ALTER TABLE synced_records ADD CONSTRAINT small CHECK (pg_column_size(data) < 100)`);
    const claim = await claimed({ entity: 'order', key: '6', version: 1, data: { text: 'x'.repeat(500) } });
    await assert.rejects(
      run(activities.persistToTarget, { ...claim, entity: 'order', key: '6', version: '1', op: 'upsert' }),
      (err: unknown) => err instanceof ApplicationFailure && err.nonRetryable && err.type === 'TargetRejected' && /small/.test(err.message),
    );
  });

  it('declares a message dead at once for a permanent fault, and after the maximum for a transient one', async () => {
    const permanent = await claimed({ entity: 'order', key: '7', data: { n: 7 } });
    const result = await run(activities.recordOutcome, { ...permanent, outcome: 'failed', error: 'stageToCache: InvalidMessage: x', permanent: true });
    assert.deepEqual(result, { status: 'dead' });

    const transient = await claimed({ entity: 'order', key: '8', data: { n: 8 } });
    assert.deepEqual(await run(activities.recordOutcome, { ...transient, outcome: 'failed', error: 'timeout', permanent: false }), { status: 'failed' });
    const failed = await readMessage(pipeline.stores.outbox, transient.messageId);
    assert.equal(failed!.lastErrorKind, 'transient');
    assert.ok(failed!.nextRunAt.getTime() > Date.now(), 'runs again after a backoff');
    // Its last allowed execution fails too: dead.
    await pipeline.stores.outbox.query(`UPDATE outbox_messages SET status = 'processing', executions = $2, lease_ends_at = now() + interval '1 minute' WHERE id = $1`, [
      transient.messageId,
      pipeline.config.maxExecutions,
    ]);
    const last = { messageId: transient.messageId, execution: pipeline.config.maxExecutions };
    assert.deepEqual(await run(activities.recordOutcome, { ...last, outcome: 'failed', error: 'timeout', permanent: false }), { status: 'dead' });
  });
});
