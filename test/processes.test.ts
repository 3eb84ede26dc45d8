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
import { TestPipeline } from './support/pipeline';

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

  function start(command: 'worker' | 'dispatcher'): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
    const { config } = pipeline;
    const child = spawn(process.execPath, [BIN, command], {
      env: {
        ...process.env,
        OUTBOX_DATABASE_URL: config.outboxDatabaseUrl,
        TARGET_DATABASE_URL: config.targetDatabaseUrl,
        REDIS_URL: config.redisUrl,
        OUTBOX_SYNC_REDIS_PREFIX: config.redisPrefix,
        TEMPORAL_ADDRESS: config.temporalAddress,
        TEMPORAL_NAMESPACE: config.temporalNamespace,
        OUTBOX_SYNC_TASK_QUEUE: config.taskQueue,
        OUTBOX_SYNC_WORKFLOW_ID_PREFIX: config.workflowIdPrefix,
        OUTBOX_SYNC_POLL_MS: '200',
      },
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

  it('exit 2 with one line when a setting is wrong', async () => {
    const { config } = pipeline;
    const child = spawn(process.execPath, [BIN, 'worker'], {
      env: { ...process.env, TEMPORAL_ADDRESS: config.temporalAddress, OUTBOX_SYNC_LEASE_MS: 'soon' },
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
