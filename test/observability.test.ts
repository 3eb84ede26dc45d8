/**
 * What an operations team sees of the running processes: Prometheus metrics scraped from two workers and
 * two dispatchers syncing together, and the JSON log lines about a message.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger } from '../observability/logging';
import { workflowIdFor } from '../temporal/workflow-id';
import { enqueue, enqueueBatch } from '../stores/outbox/enqueue';
import { readMessages } from '../stores/outbox/messages';
import { readRecord } from '../stores/target/synced-records';
import { startExecution } from '../dispatcher/start-execution';
import { dispatcherSettings } from '../dispatcher/run-dispatcher';
import { TestPipeline, waitFor } from './support/pipeline';
import { ProcessGroup } from './support/processes';
import { freePort } from './support/stack';
import { parsePrometheus, sampleValue, type Sample } from './support/prometheus';

async function scrape(port: number): Promise<Sample[]> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await response.text());
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

describe('operating the processes: metrics and logs', () => {
  let pipeline: TestPipeline;
  let processes: ProcessGroup;

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
    processes = new ProcessGroup(pipeline);
  });

  afterEach(async () => {
    await processes.killAll();
    await pipeline.close();
  });

  it('two workers and two dispatchers sync one batch, each message once, and their /metrics add up to it', async function () {
    this.timeout(120_000);
    const ports = { workers: [await freePort(), await freePort()], dispatchers: [await freePort(), await freePort()] };
    const metricsAt = (port: number) => ({ OUTBOX_SYNC_METRICS_ADDRESS: `127.0.0.1:${port}` });
    for (const port of ports.workers) processes.start('worker', metricsAt(port));
    for (const port of ports.dispatchers) processes.start('dispatcher', metricsAt(port));

    const messages = Array.from({ length: 40 }, (_, i) => ({ entity: 'order', key: `k${i % 10}`, version: i + 1, data: { i } }));
    const ids = await enqueueBatch(pipeline.stores.outbox, messages);
    await pipeline.waitForStatus(ids, ['completed'], 90_000);
    for (let k = 0; k < 10; k++) assert.equal((await readRecord(pipeline.stores.target, 'order', `k${k}`))!.version, String(30 + k + 1));
    // Two dispatchers, one claim each: every message ran exactly one execution.
    assert.deepEqual(new Set((await readMessages(pipeline.stores.outbox, ids)).map((m) => m.executions)), new Set([1]));

    const workers = await Promise.all(ports.workers.map(scrape));
    const completed = workers.map((s) => sampleValue(s, 'outbox_sync_outcomes_total', { status: 'completed' }));
    assert.equal(sum(completed), 40, `completions per worker: ${completed}`);
    assert.equal(sum(workers.map((s) => sampleValue(s, 'outbox_sync_end_to_end_seconds_count', { status: 'completed' }))), 40);
    const staged = workers.map((s) => sampleValue(s, 'outbox_sync_activity_seconds_count', { activity: 'stageToCache', result: 'ok' }));
    assert.ok(sum(staged) >= 40, `stageToCache attempts: ${staged}`);
    for (const samples of workers) {
      assert.ok(samples.some((s) => s.name.startsWith('temporal_')), 'the Temporal SDK\'s worker metrics are there too');
      assert.ok(sampleValue(samples, 'process_resident_memory_bytes') > 0);
    }

    const dispatchers = await Promise.all(ports.dispatchers.map(scrape));
    for (const samples of dispatchers) {
      assert.equal(sampleValue(samples, 'outbox_sync_messages', { status: 'completed' }), 40);
      assert.equal(sampleValue(samples, 'outbox_sync_messages', { status: 'pending' }), 0);
      assert.equal(sampleValue(samples, 'outbox_sync_oldest_pending_seconds'), 0);
      assert.equal(sampleValue(samples, 'outbox_sync_outbox_up'), 1);
    }
    assert.equal(sum(dispatchers.map((s) => sampleValue(s, 'outbox_sync_start_delay_seconds_count'))), 40);
  });

  it('logs JSON lines about a message with its message id, workflow id and run id, and never its data', async () => {
    const worker = processes.start('worker', { OUTBOX_SYNC_LOG_LEVEL: 'debug' });
    const dispatcher = processes.start('dispatcher', { OUTBOX_SYNC_LOG_LEVEL: 'debug' });
    const marker = 'do-not-log-7f3a91';
    const synced = await enqueue(pipeline.stores.outbox, { entity: 'customer', key: 'c1', data: { email: `${marker}@example.com` } });
    await pipeline.waitForStatus([synced], ['completed']);

    // A late execution of the completed message (its run closed): its first step logs that it holds no
    // claim, and stops.
    const settings = dispatcherSettings(pipeline.config);
    await pipeline.client.workflow.getHandle(workflowIdFor(synced, settings.workflowIdPrefix)).result();
    const runId = await startExecution(pipeline.client, { id: synced, entity: 'customer', key: 'c1', execution: 99 }, settings);
    const line = await waitFor('the worker to log about the late execution', async () =>
      worker
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((entry) => entry.msg === 'message is no longer claimed by this execution; nothing to do'),
    );
    assert.equal(line.messageId, synced);
    assert.equal(line.workflowId, workflowIdFor(synced, settings.workflowIdPrefix));
    assert.equal(line.runId, runId);
    assert.equal(line.level, 'info');

    for (const text of [worker.stderr(), dispatcher.stderr()]) {
      for (const l of text.split('\n').filter(Boolean)) assert.doesNotThrow(() => JSON.parse(l), `not a JSON line: ${l}`);
      assert.ok(!text.includes(marker), 'message data reached the log');
    }
  });

  it('writes readable lines for a terminal, and redacts data and secrets that a field would carry', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk) => (text += chunk));
    const pretty = createLogger({ logLevel: 'info', logFormat: 'pretty' }, 'test', out);
    pretty.info({ messageId: 7 }, 'message synced');
    assert.match(text, /INFO.*message synced/);
    assert.match(text, /messageId: 7/);
    assert.doesNotMatch(text, /^\{/);

    text = '';
    const json = createLogger({ logLevel: 'info', logFormat: 'json' }, 'test', out);
    json.warn({ messageId: 8, data: { card: '4111' }, request: { authorization: 'Bearer s3cret', token: 't0k' } }, 'odd');
    const entry = JSON.parse(text);
    assert.equal(entry.messageId, 8);
    assert.equal(entry.data, '[redacted]');
    assert.equal(entry.request.authorization, '[redacted]');
    assert.equal(entry.request.token, '[redacted]');
    assert.ok(!text.includes('4111') && !text.includes('s3cret'));
  });
});
