/**
 * The processes as users run them: `outbox-sync worker` and `outbox-sync dispatcher` as child processes,
 * syncing messages, then stopping cleanly on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../database/package-root';
import { enqueueBatch } from '../outbox/enqueue';
import { readRecord } from '../target/store';
import { TestPipeline, waitFor } from './support/pipeline';

const BIN = join(packageRoot, 'bin', 'outbox-sync');

describe('the worker and dispatcher processes', () => {
  let pipeline: TestPipeline;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
  });

  afterEach(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    children.length = 0;
    await pipeline.close();
  });

  function start(command: 'worker' | 'dispatcher', env: Record<string, string> = {}): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
    const child = spawn(process.execPath, [BIN, command], {
      env: pipeline.processEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exited, output: () => output };
  }

  it('sync messages, and exit 0 on SIGTERM', async () => {
    const worker = start('worker');
    const dispatcher = start('dispatcher');
    const messages = Array.from({ length: 20 }, (_, i) => ({ entity: 'order', key: `p${i}`, data: { i } }));
    const ids = await enqueueBatch(pipeline.stores.outbox, messages);
    await pipeline.waitForStatus(ids, ['completed'], 60_000);
    assert.deepEqual((await readRecord(pipeline.stores.target, 'order', 'p7'))!.data, { i: 7 });

    dispatcher.child.kill('SIGTERM');
    worker.child.kill('SIGTERM');
    assert.equal(await dispatcher.exited, 0, dispatcher.output());
    assert.equal(await worker.exited, 0, worker.output());
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
    first.child.kill('SIGKILL');
    await first.exited;
    start('worker', settings);
    const done = await pipeline.waitForStatus(ids, ['completed'], 90_000);
    assert.equal(done.length, 60);
    for (let k = 0; k < 20; k++) {
      const record = await readRecord(pipeline.stores.target, 'order', `k${k}`);
      assert.equal(record!.version, String(40 + k + 1), `k${k} holds its highest version`);
    }
  });

  it('exit 2 with one line when a setting is wrong', async () => {
    const child = spawn(process.execPath, [BIN, 'worker'], {
      env: pipeline.processEnv({ OUTBOX_SYNC_LEASE_MS: 'soon' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 2);
    assert.equal(stderr.trim().split('\n').length, 1, stderr);
    assert.match(stderr, /^outbox-sync: OUTBOX_SYNC_LEASE_MS: must be an integer/);
  });
});
