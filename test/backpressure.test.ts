/**
 * Backpressure: dispatchers start no more workflows than OUTBOX_SYNC_MAX_IN_FLIGHT allows, however many
 * of them claim at once, so a backlog waits in `pending` rather than piling up in Temporal; and messages
 * that keep failing, run again by the redriver, hold at most half of those slots, so fresh ones still flow.
 */
import assert from 'node:assert/strict';
import { enqueueBatch } from '../stores/outbox/enqueue';
import { claimAbandoned, claimFailedDue, claimPending, recordCompleted, rerunSlots } from '../stores/outbox/state-machine';
import { TestPipeline, waitFor } from './support/pipeline';

describe('backpressure: an in-flight cap on messages in processing', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;

  afterEach(async () => {
    // Hanging executions end once their connections drop; the worker waits for them as it stops.
    pipeline?.targetProxy?.refuse();
    await pipeline?.close();
  });

  async function processing(): Promise<number> {
    const { rows } = await pipeline.stores.outbox.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'processing'`);
    return rows[0]!.n;
  }

  it('lets three dispatchers claiming at once put no more than the cap in processing, then drains the backlog under it', async () => {
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_MAX_IN_FLIGHT: '7', OUTBOX_SYNC_CLAIM_BATCH: '5' } });
    const ids = await enqueueBatch(
      pipeline.stores.outbox,
      Array.from({ length: 60 }, (_, i) => ({ entity: 'order', key: `b${i % 10}`, version: i + 1, data: { i } })),
    );
    // No worker yet: nothing leaves processing, so every claim past the cap would show.
    const dispatchers = [pipeline.createDispatcher(), pipeline.createDispatcher(), pipeline.createDispatcher()];
    const claimed = await Promise.all(dispatchers.flatMap((d) => Array.from({ length: 4 }, () => d.dispatchOnce())));
    assert.equal(
      claimed.reduce((a, b) => a + b, 0),
      7,
    );
    assert.equal(await processing(), 7);

    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await processing());
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await pipeline.startWorker();
    for (let i = 0; i < 3; i++) pipeline.startDispatcher();
    try {
      await pipeline.waitForStatus(ids, ['completed'], 90_000);
    } finally {
      sampling = false;
      await sampler;
    }
    assert.ok(peak <= 7, `at most 7 in processing at any sample, saw ${peak}`);
  });

  it('applies the cap to failed messages run again, too', async () => {
    pipeline = await TestPipeline.create();
    const { outbox } = pipeline.stores;
    await enqueueBatch(
      outbox,
      Array.from({ length: 10 }, (_, i) => ({ entity: 'order', key: `f${i}`, data: { i } })),
    );
    // Seven failed and due, three in processing; a cap of five leaves room for two.
    await outbox.query(`UPDATE outbox_messages SET status = 'failed', executions = 1, next_run_at = now() - interval '1 second' WHERE id IN (SELECT id FROM outbox_messages ORDER BY id LIMIT 7)`);
    await outbox.query(`UPDATE outbox_messages SET status = 'processing', executions = 1, lease_ends_at = now() + interval '1 minute' WHERE status = 'pending'`);
    assert.equal((await claimFailedDue(outbox, { limit: 100, leaseMs: 60_000, maxExecutions: 5, maxInFlight: 5 })).length, 2);
    assert.equal(await processing(), 5);
    assert.equal((await claimFailedDue(outbox, { limit: 100, leaseMs: 60_000, maxExecutions: 5, maxInFlight: 5 })).length, 0);
    assert.equal((await claimFailedDue(outbox, { limit: 100, leaseMs: 60_000, maxExecutions: 5 })).length, 5, 'without a cap, every due message');
  });

  it('lets re-runs of failed messages hold at most half the cap, fresh messages every slot left, and a reconciled fresh claim stay fresh', async () => {
    pipeline = await TestPipeline.create();
    const { outbox } = pipeline.stores;
    assert.deepEqual([1, 2, 3, 4, 5, 1000].map(rerunSlots), [1, 1, 1, 2, 2, 500]);
    await enqueueBatch(
      outbox,
      Array.from({ length: 10 }, (_, i) => ({ entity: 'order', key: `s${i}`, data: { i } })),
    );
    // Six failed and due, four pending; a cap of four.
    await outbox.query(`UPDATE outbox_messages SET status = 'failed', executions = 1, next_run_at = now() - interval '1 second' WHERE id IN (SELECT id FROM outbox_messages ORDER BY id LIMIT 6)`);
    const cap = { limit: 100, leaseMs: 60_000, maxInFlight: 4 };
    const reruns = await claimFailedDue(outbox, { ...cap, maxExecutions: 5 });
    assert.equal(reruns.length, 2, 'half the cap');
    assert.equal((await claimFailedDue(outbox, { ...cap, maxExecutions: 5 })).length, 0, 'the other half stays free for fresh messages');
    const fresh = await claimPending(outbox, { ...cap, workflowIdPrefix: 'wf-' });
    assert.equal(fresh.length, 2, 'fresh messages take every free slot');
    assert.equal(await processing(), 4);

    // The reconciler starts a fresh message again (its run was lost): it keeps its slot as a fresh one.
    assert.ok(await claimAbandoned(outbox, { id: fresh[0]!.id, execution: 1, leaseMs: 60_000 }));
    assert.ok((await recordCompleted(outbox, { id: reruns[0]!.id, execution: 2 })).moved);
    assert.ok((await recordCompleted(outbox, { id: fresh[1]!.id, execution: 1 })).moved);
    // In processing: one re-run and the reconciled fresh message; room for two, of which one is a re-run's.
    assert.equal((await claimFailedDue(outbox, { ...cap, maxExecutions: 5 })).length, 1);
    assert.equal((await claimPending(outbox, { ...cap, workflowIdPrefix: 'wf-' })).length, 1);
  });

  it('lets fresh messages complete while messages that keep failing are run again and hang, and none of those moves', async function () {
    this.timeout(60_000);
    pipeline = await TestPipeline.create({
      // `stuck` has no mapping: synced_records, through the proxy. `fresh` goes to a table of its own, straight.
      proxyTarget: true,
      userTables: {
        postgres: 'CREATE TABLE fresh_rows (id text PRIMARY KEY, n integer)',
        mapping: (urls) => ({ databases: { user: urls.postgres }, entities: { fresh: { database: 'user', table: 'fresh_rows', key: 'id' } } }),
      },
      env: {
        OUTBOX_SYNC_MAX_IN_FLIGHT: '4',
        OUTBOX_SYNC_MAX_EXECUTIONS: '1000',
        OUTBOX_SYNC_REDRIVE_BASE_MS: '50',
        OUTBOX_SYNC_REDRIVE_MAX_MS: '200',
        // One try per execution while the target refuses, so that each execution fails at once; and a
        // step timeout longer than the test, so that no hanging execution ends on its own while it runs.
        OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '1',
        OUTBOX_SYNC_ACTIVITY_TIMEOUT_MS: '120000',
      },
    });
    const proxy = pipeline.targetProxy!;
    const { outbox } = pipeline.stores;
    await pipeline.startWorker();
    proxy.refuse();
    pipeline.startDispatcher();
    const stuck = await enqueueBatch(
      outbox,
      Array.from({ length: 8 }, (_, i) => ({ entity: 'stuck', key: `k${i}`, data: { i } })),
    );
    await waitFor('every stuck message to have failed once', async () => {
      const { rows } = await outbox.query<{ n: number }>(
        `SELECT count(DISTINCT message_id)::int AS n FROM outbox_message_history WHERE to_status = 'failed' AND message_id = ANY($1)`,
        [stuck],
      );
      return rows[0]!.n === stuck.length ? true : undefined;
    });

    // From now on every execution of a stuck message hangs on its connection to the target.
    await proxy.hang();
    const probe = pipeline.createDispatcher();
    await waitFor('the re-runs to hold every slot they may, each hanging', async () => {
      const { rows } = await outbox.query<{ processing: number; due: number }>(
        `SELECT count(*) FILTER (WHERE status = 'processing')::int AS processing,
                count(*) FILTER (WHERE status = 'failed' AND next_run_at <= now())::int AS due
           FROM outbox_messages WHERE id = ANY($1)`,
        [stuck],
      );
      const { processing, due } = rows[0]!;
      // Failed messages are due and no redrive can claim one: the cap or the re-runs' share is full.
      if (processing === 0 || due === 0 || processing !== proxy.heldConnections) return undefined;
      return (await probe.redriveOnce()) === 0 ? true : undefined;
    });
    const before = await stuckStates(stuck);
    const held = proxy.heldConnections;

    const fresh = await enqueueBatch(
      outbox,
      Array.from({ length: 3 }, (_, i) => ({ entity: 'fresh', key: `f${i}`, data: { n: i } })),
    );
    await pipeline.waitForStatus(fresh, ['completed'], 15_000);
    assert.deepEqual(await stuckStates(stuck), before, 'no stuck message moved: no hanging execution ended to free a slot');
    assert.equal(proxy.heldConnections, held, 'every hanging execution still waits on the target');
    const reruns = before.filter((m) => m.status === 'processing');
    assert.equal(reruns.length, rerunSlots(4), 're-runs hold half the cap');
    assert.ok(reruns.every((m) => m.executions > 1));
    assert.deepEqual(await pipeline.user!.postgres('SELECT id, n FROM fresh_rows ORDER BY id'), [
      { id: 'f0', n: 0 },
      { id: 'f1', n: 1 },
      { id: 'f2', n: 2 },
    ]);
  });

  async function stuckStates(ids: number[]): Promise<{ id: number; status: string; executions: number }[]> {
    const { rows } = await pipeline.stores.outbox.query<{ id: string; status: string; executions: number }>(
      `SELECT id, status, executions FROM outbox_messages WHERE id = ANY($1) ORDER BY id`,
      [ids],
    );
    return rows.map((r) => ({ id: Number(r.id), status: r.status, executions: r.executions }));
  }
});
