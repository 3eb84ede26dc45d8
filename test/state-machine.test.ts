/**
 * The state machine's transitions on the real outbox database, one at a time, on a clock the test moves:
 * leases and backoffs end when the test advances the clock, never by waiting for them.
 */
import assert from 'node:assert/strict';
import { enqueue } from '../stores/outbox/enqueue';
import { findLeaseExpired, readMessage } from '../stores/outbox/messages';
import {
  claimAbandoned,
  claimFailedDue,
  claimPending,
  markDeadExhausted,
  recordCompleted,
  recordFailure,
  renewLease,
  type ClaimedMessage,
} from '../stores/outbox/state-machine';
import { inTransaction } from '../stores/postgres/transaction';
import { ManualClock } from './support/clock';
import { TestPipeline } from './support/pipeline';

const MINUTE = 60_000;

describe('the state machine, on an injected clock', () => {
  let pipeline: TestPipeline;
  let clock: ManualClock;

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
    clock = new ManualClock();
  });

  afterEach(async () => {
    await pipeline.close();
  });

  async function claimOne(key: string): Promise<ClaimedMessage> {
    const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key, data: { key } });
    const claimed = await claimPending(pipeline.stores.outbox, { limit: 10, leaseMs: MINUTE, workflowIdPrefix: 'wf-', now: clock.now() });
    const claim = claimed.find((c) => c.id === id);
    assert.ok(claim, 'claimed');
    return claim;
  }

  const failure = (kind: 'transient' | 'permanent', maxExecutions = 3) => ({ error: `a ${kind} fault`, kind, retryInMs: MINUTE, maxExecutions });

  it('ends a claim’s lease when the clock passes it, and a renewal pushes it out by another lease', async () => {
    const { outbox } = pipeline.stores;
    const claim = await claimOne('lease');
    assert.equal(claim.execution, 1);
    assert.deepEqual(await findLeaseExpired(outbox, { limit: 10, now: clock.advance(MINUTE - 1) }), [], 'not yet');
    assert.deepEqual((await findLeaseExpired(outbox, { limit: 10, now: clock.advance(1) })).map((m) => m.id), [claim.id]);
    assert.equal(await renewLease(outbox, { id: claim.id, execution: claim.execution, leaseMs: MINUTE, now: clock.now() }), true);
    assert.deepEqual(await findLeaseExpired(outbox, { limit: 10, now: clock.advance(MINUTE - 1) }), [], 'renewed');
    const message = await readMessage(outbox, claim.id);
    assert.equal(message!.leaseEndsAt!.getTime(), clock.now().getTime() + 1);
  });

  it('refuses to renew the lease of an execution that no longer holds the claim', async () => {
    const { outbox } = pipeline.stores;
    const claim = await claimOne('renew-late');
    assert.equal((await recordCompleted(outbox, { id: claim.id, execution: claim.execution })).moved, true);
    assert.equal(await renewLease(outbox, { id: claim.id, execution: claim.execution, leaseMs: MINUTE, now: clock.now() }), false);
  });

  it('moves processing to failed, with the backoff as the next run, or to dead in the same statement when it was the last execution', async () => {
    const { outbox } = pipeline.stores;
    const first = await claimOne('transient');
    const failed = await recordFailure(outbox, { id: first.id, execution: 1, now: clock.now() }, failure('transient'));
    assert.ok(failed.moved);
    assert.equal(failed.message.status, 'failed');
    const stored = await readMessage(outbox, first.id);
    assert.equal(stored!.nextRunAt.getTime(), clock.now().getTime() + MINUTE);
    assert.equal(stored!.leaseEndsAt, null, 'the lease goes with the claim');

    const last = await claimOne('last');
    const dead = await recordFailure(outbox, { id: last.id, execution: 1, now: clock.now() }, failure('transient', 1));
    assert.ok(dead.moved);
    assert.equal(dead.message.status, 'dead');

    const permanent = await claimOne('permanent');
    const deadAtOnce = await recordFailure(outbox, { id: permanent.id, execution: 1 }, failure('permanent'));
    assert.ok(deadAtOnce.moved);
    assert.equal(deadAtOnce.message.status, 'dead');
    const history = await outbox.query(`SELECT from_status, to_status FROM outbox_message_history WHERE message_id = $1 ORDER BY id`, [permanent.id]);
    assert.deepEqual(history.rows.at(-1), { from_status: 'processing', to_status: 'dead' }, 'one move, no stop in failed');
  });

  it('says what the message holds when a transition does not apply, without a second read', async () => {
    const { outbox } = pipeline.stores;
    const claim = await claimOne('not-moved');
    await recordCompleted(outbox, { id: claim.id, execution: 1 });
    const late = await recordFailure(outbox, { id: claim.id, execution: 1 }, failure('transient'));
    assert.equal(late.moved, false);
    if (late.moved) return;
    assert.equal(late.current!.status, 'completed');
    assert.equal(late.current!.executions, 1);
    const gone = await recordCompleted(outbox, { id: 999_999, execution: 1 });
    assert.deepEqual(gone, { moved: false, current: null });
  });

  it('reports the committed state, not the one before it, when another transition of the same message commits first', async () => {
    const { outbox } = pipeline.stores;
    const claim = await claimOne('race');
    // The reconciler's move holds the row; the activity's failure waits for it, then sees what it left.
    let reported: Awaited<ReturnType<typeof recordFailure>> | undefined;
    let waiting: Promise<unknown> | undefined;
    await inTransaction(outbox, async (tx) => {
      assert.ok(await claimAbandoned(tx, { id: claim.id, execution: 1, leaseMs: MINUTE }));
      waiting = recordFailure(outbox, { id: claim.id, execution: 1 }, failure('transient')).then((r) => (reported = r));
      await waitUntilBlocked(outbox);
      assert.equal(reported, undefined, 'it waits for the row');
    });
    await waiting;
    assert.ok(reported && !reported.moved);
    assert.equal(reported.current!.status, 'processing');
    assert.equal(reported.current!.executions, 2, 'the new execution, committed meanwhile');
  });

  it('lets the redriver claim a failed message only once its backoff has passed on the clock', async () => {
    const { outbox } = pipeline.stores;
    const claim = await claimOne('backoff');
    await recordFailure(outbox, { id: claim.id, execution: 1, now: clock.now() }, failure('transient'));
    const options = { limit: 10, leaseMs: MINUTE, maxExecutions: 3 };
    assert.deepEqual(await claimFailedDue(outbox, { ...options, now: clock.advance(MINUTE - 1) }), [], 'still backing off');
    const [again] = await claimFailedDue(outbox, { ...options, now: clock.advance(1) });
    assert.equal(again!.id, claim.id);
    assert.equal(again!.execution, 2);
  });

  it('declares dead the failed messages out of executions or failed for good, and leaves the others', async () => {
    const { outbox } = pipeline.stores;
    const exhausted = await claimOne('exhausted');
    await recordFailure(outbox, { id: exhausted.id, execution: 1, now: clock.now() }, failure('transient'));
    await claimFailedDue(outbox, { limit: 10, leaseMs: MINUTE, maxExecutions: 3, now: clock.advance(MINUTE) });
    await recordFailure(outbox, { id: exhausted.id, execution: 2, now: clock.now() }, failure('transient'));
    const retriable = await claimOne('retriable');
    await recordFailure(outbox, { id: retriable.id, execution: 1 }, failure('transient'));
    // The maximum was lowered to 2 since those failures were recorded (each allowed 3).
    const dead = await markDeadExhausted(outbox, { maxExecutions: 2, now: clock.now() });
    assert.deepEqual(dead.map((m) => [m.id, m.status, m.executions]), [[exhausted.id, 'dead', 2]]);
    assert.equal((await readMessage(outbox, retriable.id))!.status, 'failed', 'one execution left: it stays failed');
    assert.deepEqual(await markDeadExhausted(outbox, { maxExecutions: 2 }), [], 'nothing left to declare');
  });
});

/** Until some backend of this database waits on a row lock. */
async function waitUntilBlocked(db: TestPipeline['stores']['outbox']): Promise<void> {
  await waitForValue(async () => {
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`);
    return rows[0].n > 0 ? true : undefined;
  });
}

async function waitForValue<T>(check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the condition did not come true');
}
