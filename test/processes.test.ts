/**
 * The processes as users run them: `outbox-sync worker` and `outbox-sync dispatcher` as child processes,
 * syncing messages, then stopping cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { enqueueBatch } from '../stores/outbox/enqueue';
import { readRecord } from '../stores/target/synced-records';
import { TestPipeline, waitFor } from './support/pipeline';
import { ProcessGroup } from './support/processes';

describe('the worker and dispatcher processes', () => {
  let pipeline: TestPipeline;
  let processes: ProcessGroup;
  const start = (command: 'worker' | 'dispatcher', env: Record<string, string> = {}) => processes.start(command, env);

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
    processes = new ProcessGroup(pipeline);
  });

  afterEach(async () => {
    await processes.killAll();
    await pipeline.close();
  });

  it('sync messages, and exit 0 on SIGTERM', async () => {
    const worker = start('worker');
    const dispatcher = start('dispatcher');
    const messages = Array.from({ length: 20 }, (_, i) => ({ entity: 'order', key: `p${i}`, data: { i } }));
    const ids = await enqueueBatch(pipeline.stores.outbox, messages);
    await pipeline.waitForStatus(ids, ['completed'], 60_000);
    assert.deepEqual((await readRecord(pipeline.stores.target, 'order', 'p7'))!.data, { i: 7 });

    const [dispatcherExit, workerExit] = await Promise.all([dispatcher.stop('SIGTERM'), worker.stop('SIGTERM')]);
    assert.deepEqual(dispatcherExit, { code: 0, signal: null }, dispatcher.output());
    assert.deepEqual(workerExit, { code: 0, signal: null }, worker.output());
    assert.match(dispatcher.output(), /dispatcher stopped/);
    assert.match(worker.output(), /worker stopped/);
  });

  it('lose nothing when a worker is killed mid-flight and another takes over', async function () {
    // Steps and workflow tasks held by the dead worker come back only after their timeouts.
    this.timeout(180_000);
    // A short step timeout, so the steps the killed worker held are retried soon.
    const settings = { OUTBOX_SYNC_ACTIVITY_TIMEOUT_MS: '2000' };
    const first = start('worker', settings);
    start('dispatcher', settings);
    const messages = Array.from({ length: 60 }, (_, i) => ({ entity: 'order', key: `k${i % 20}`, version: i + 1, data: { i } }));
    const ids = await enqueueBatch(pipeline.stores.outbox, messages);
    await waitFor('some messages to complete', async () => {
      const { rows } = await pipeline.stores.outbox.query(`SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'completed'`);
      return rows[0].n >= 5 ? true : undefined;
    });
    await first.kill();
    start('worker', settings);
    const done = await pipeline.waitForStatus(ids, ['completed'], 90_000);
    assert.equal(done.length, 60);
    for (let k = 0; k < 20; k++) {
      const record = await readRecord(pipeline.stores.target, 'order', `k${k}`);
      assert.equal(record!.version, String(40 + k + 1), `k${k} holds its highest version`);
    }
  });

  it('exit 2 with one line when a setting is wrong', async () => {
    const worker = start('worker', { OUTBOX_SYNC_LEASE_MS: 'soon' });
    assert.equal((await worker.exited).code, 2);
    assert.equal(worker.stderr().trim().split('\n').length, 1, worker.stderr());
    assert.match(worker.stderr(), /^outbox-sync: OUTBOX_SYNC_LEASE_MS: must be an integer/);
  });
});
