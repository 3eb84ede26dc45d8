/**
 * Backpressure: dispatchers start no more workflows than OUTBOX_SYNC_MAX_IN_FLIGHT allows, however many
 * of them claim at once, so a backlog waits in `pending` rather than piling up in Temporal.
 */
import assert from 'node:assert/strict';
import { enqueueBatch } from '../stores/outbox/enqueue';
import { claimFailedDue } from '../stores/outbox/state-machine';
import { TestPipeline } from './support/pipeline';

describe('backpressure: an in-flight cap on messages in processing', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;

  afterEach(async () => {
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
});
