/**
 * The SLA (OUTBOX_SYNC_SLA_SECONDS, stores/outbox/overdue.ts, dispatcher/overdue.ts): messages not
 * completed within it are counted in `status --json` and the outbox_sync_overdue_messages gauge, and each
 * is appended once to the failure stream, through a Redis outage and with two dispatchers sweeping at
 * once; a workflow stuck on a workflow task that fails again and again is overdue like any other, and
 * `inspect` gives Temporal's reason.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Client } from '@temporalio/client';
import { dataConverterFor } from '../temporal/data-converter';
import { enqueue, enqueueBatch } from '../stores/outbox/enqueue';
import { readMessage } from '../stores/outbox/messages';
import { markOverdue } from '../stores/outbox/overdue';
import { inTransaction } from '../stores/postgres/transaction';
import { claimPending, FailureKind, recordCompleted, recordFailure, retryMessages } from '../stores/outbox/state-machine';
import { ManualClock } from './support/clock';
import { TestPipeline, waitFor } from './support/pipeline';
import { ProcessGroup, runCli } from './support/processes';
import { parsePrometheus, sampleValue } from './support/prometheus';
import { freePort, getStack } from './support/stack';

const SLA_SECONDS = 60;
const K1 = { id: 'k1', key: randomBytes(32) };
const K2 = { id: 'k2', key: randomBytes(32) };
const keysSetting = (...keys: { id: string; key: Buffer }[]) => keys.map((k) => `${k.id}=${k.key.toString('base64')}`).join(',');
const INGEST_TOKENS = 'press=sla-test-token-0123456789';

type Entry = Record<string, string>;

const overdueEntries = (entries: Entry[]) => entries.filter((e) => e.status === 'overdue');

describe('the SLA: overdue messages are counted, shown and notified', function () {
  this.timeout(90_000);
  let pipeline: TestPipeline | undefined;
  let processes: ProcessGroup | undefined;

  afterEach(async () => {
    await processes?.killAll();
    processes = undefined;
    await pipeline?.close();
    pipeline = undefined;
  });

  it('counts the pending, processing and failed messages past the SLA in status --json and the gauge, never a completed or dead one; 0 without an SLA', async () => {
    const p = (pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_SLA_SECONDS: String(SLA_SECONDS) } }));
    const { outbox } = p.stores;
    const ids = await enqueueBatch(outbox, ['pending', 'processing', 'failed', 'completed', 'dead', 'fresh'].map((key) => ({ entity: 'order', key, data: { key } })));
    const [pending, processing, failed, completed, dead] = ids;
    // Sent two minutes ago, each now in its status; `fresh` was sent just now and is pending.
    await outbox.query(
      `UPDATE outbox_messages SET created_at = now() - interval '2 minutes', status = entity_key WHERE id = ANY($1::bigint[])`,
      [[pending, processing, failed, completed, dead]],
    );

    // The gauge from processes that report the outbox (ingest), with the SLA and without; started first,
    // to come up while the commands run.
    processes = new ProcessGroup(p);
    const [withSla, without] = [await freePort(), await freePort()];
    processes.start('ingest', { INGEST_TOKENS, INGEST_PORT: String(withSla) });
    processes.start('ingest', { INGEST_TOKENS, INGEST_PORT: String(without), OUTBOX_SYNC_SLA_SECONDS: '' });

    const [json, text] = await Promise.all([runCli(['status', '--json'], p.processEnv()), runCli(['status'], p.processEnv())]);
    assert.equal(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout);
    assert.deepEqual(status.counts, { pending: 2, processing: 1, completed: 1, failed: 1, dead: 1 });
    assert.equal(status.overdue, 3, 'the old pending, processing and failed ones; not the fresh, completed or dead ones');
    assert.equal(status.slaSeconds, SLA_SECONDS);
    assert.match(text.stdout, /^overdue: 3 \(not completed 60 s after they were sent\)$/m);

    const gauge = (port: number) =>
      waitFor('ingest to serve /metrics', async () => {
        const response = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
        if (!response?.ok) return undefined;
        // This gauge's lines only: the process metrics' first scrape may hold a value the parser refuses.
        const lines = (await response.text()).split('\n').filter((line) => line.startsWith('outbox_sync_overdue_messages '));
        return sampleValue(parsePrometheus(lines.join('\n')), 'outbox_sync_overdue_messages');
      });
    assert.equal(await gauge(withSla), 3);
    assert.equal(await gauge(without), 0, 'exported, at 0, while the SLA is off');
  });

  it('appends each overdue message to the failure stream once: through a Redis outage, with two sweeps at once, and after a restart', async () => {
    const p = (pipeline = await TestPipeline.create({ proxyRedis: true, env: { OUTBOX_SYNC_SLA_SECONDS: String(SLA_SECONDS) } }));
    const { outbox } = p.stores;
    const late = await enqueueBatch(outbox, Array.from({ length: 40 }, (_, i) => ({ entity: 'order', key: `late-${i}`, version: 3, data: { i } })));
    // One completed and one dead, sent as long ago as the others: neither is ever overdue.
    const [completed, dead] = await enqueueBatch(outbox, [
      { entity: 'order', key: 'done', data: { done: true } },
      { entity: 'order', key: 'dead', data: { dead: true } },
    ]);
    const claims = await claimPending(outbox, { limit: 100, leaseMs: 60_000, workflowIdPrefix: p.config.workflowIdPrefix });
    const claimOf = (id: number) => claims.find((c) => c.id === id)!;
    assert.equal((await recordCompleted(outbox, { id: completed!, execution: 1 })).moved, true);
    const permanent = { error: 'InvalidMessage: data must be a JSON object', kind: FailureKind.permanent, retryInMs: 0, maxExecutions: 3 };
    assert.equal((await recordFailure(outbox, { id: dead!, execution: 1 }, permanent)).moved, true);
    // Half of the late ones fail once (failed, waiting for a redrive); the others stay processing.
    const transient = { error: 'persistToTarget: the target is down', kind: FailureKind.transient, retryInMs: 600_000, maxExecutions: 3 };
    for (const id of late.slice(0, 20)) assert.equal((await recordFailure(outbox, { id, execution: claimOf(id).execution }, transient)).moved, true);
    await p.catchUpStreams();
    const before = await p.streamEntries('failed');

    const clock = new ManualClock();
    const [first, second] = [p.createDispatcher({ clock: clock.now }), p.createDispatcher({ clock: clock.now })];
    assert.deepEqual(await first.sweepOverdueOnce(), [], 'nothing is overdue within the SLA');
    clock.advance(SLA_SECONDS * 1000 + 1);

    // Redis goes. One sweep is caught half-way, its statement not committed yet, when another dispatcher
    // sweeps: the second passes over what the first holds and marks the rest.
    p.redisProxy!.refuse();
    const [a, b] = await inTransaction(outbox, async (client) => {
      const held = await markOverdue(client, { slaSeconds: SLA_SECONDS, limit: 15, now: clock.now() });
      return [held, await second.sweepOverdueOnce()];
    });
    assert.equal(a.length, 15);
    const marked = [...a, ...b].map((m) => m.id).sort((x, y) => x - y);
    assert.deepEqual(marked, late, 'every late message marked once, and neither the completed nor the dead one');
    assert.deepEqual(await Promise.all([first.sweepOverdueOnce(), second.sweepOverdueOnce()]), [[], []], 'a sweep again marks nothing');
    await assert.rejects(first.publishOnce(), { name: 'AppendFailed' }, 'Redis refuses the append: the cursor stays');
    assert.equal((await readMessage(outbox, late[0]!))!.overdueAt?.getTime(), clock.now().getTime());

    await p.redisProxy!.restore();
    await p.catchUpStreams(first);
    const entries = (await p.streamEntries('failed')).slice(before.length);
    const overdue = overdueEntries(entries);
    assert.deepEqual(overdue.map((e) => Number(e.messageId)).sort((x, y) => x - y), late, 'each late message on the failure stream once, and only them');
    assert.equal(new Set(overdue.map((e) => e.transition)).size, late.length);
    const failedOne = overdue.find((e) => e.messageId === String(late[0]))!;
    assert.deepEqual(
      { entity: failedOne.entity, key: failedOne.key, version: failedOne.version, attempt: failedOne.attempt, error: failedOne.error, at: failedOne.at },
      { entity: 'order', key: 'late-0', version: '3', attempt: '1', error: transient.error, at: clock.now().toISOString() },
    );
    assert.equal(overdue.find((e) => e.messageId === String(late[39]))!.error, undefined, 'a processing message without a failure has no error');
    assert.deepEqual((await p.streamEntries('succeeded')).filter((e) => e.status === 'overdue'), [], 'nothing overdue on the success stream');

    // A dispatcher started afresh (as after a restart) sweeps and publishes again: nothing new.
    const restarted = p.createDispatcher({ clock: clock.now });
    assert.deepEqual(await restarted.sweepOverdueOnce(), []);
    await p.catchUpStreams(restarted);
    assert.equal((await p.streamEntries('failed')).length, before.length + entries.length, 'no entry appended twice');
  });

  it('counts an operator’s retry as a new sending: the SLA starts again, and the message may be notified again', async () => {
    const p = (pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_SLA_SECONDS: String(SLA_SECONDS) } }));
    const { outbox } = p.stores;
    const id = await enqueue(outbox, { entity: 'order', key: 'again', data: { n: 1 } });
    const clock = new ManualClock();
    const dispatcher = p.createDispatcher({ clock: clock.now });
    clock.advance(SLA_SECONDS * 1000 + 1);
    assert.deepEqual((await dispatcher.sweepOverdueOnce()).map((m) => m.id), [id]);
    await claimPending(outbox, { limit: 1, leaseMs: 60_000, workflowIdPrefix: p.config.workflowIdPrefix });
    const permanent = { error: 'InvalidMessage: data must be a JSON object', kind: FailureKind.permanent, retryInMs: 0, maxExecutions: 3 };
    assert.equal((await recordFailure(outbox, { id, execution: 1 }, permanent)).moved, true);
    assert.deepEqual(await retryMessages(outbox, { ids: [id] }, { actor: 'cli' }), [id]);
    assert.equal((await readMessage(outbox, id))!.overdueAt, null, 'the retry clears the mark');

    // Judged from the retry: within the SLA, then past it.
    const later = new ManualClock();
    const afterRetry = p.createDispatcher({ clock: later.now });
    later.advance((SLA_SECONDS / 2) * 1000);
    assert.deepEqual(await afterRetry.sweepOverdueOnce(), []);
    later.advance((SLA_SECONDS / 2) * 1000 + 1);
    assert.deepEqual((await afterRetry.sweepOverdueOnce()).map((m) => m.id), [id]);
    await p.catchUpStreams(afterRetry);
    const overdue = overdueEntries(await p.streamEntries('failed'));
    assert.deepEqual(overdue.map((e) => e.messageId), [String(id), String(id)], 'once per sending');
    assert.notEqual(overdue[0]!.transition, overdue[1]!.transition);
  });

  it('counts a workflow stuck on a failing workflow task as overdue and notifies it; inspect gives Temporal’s reason, or says it could not ask', async () => {
    // The dispatcher seals workflow inputs under k1; the worker holds only k2, so it cannot read them and
    // every workflow task fails, while the workflow stays running.
    const env = { OUTBOX_SYNC_CODEC_KEYS: keysSetting(K1), OUTBOX_SYNC_SLA_SECONDS: String(SLA_SECONDS) };
    const p = (pipeline = await TestPipeline.create({ env }));
    await p.startWorker({ dataConverter: dataConverterFor({ codecKeys: [K2] }) });
    const stack = getStack();
    const client = new Client({ connection: stack.connection, namespace: stack.namespace, dataConverter: dataConverterFor(p.config) });
    const clock = new ManualClock();
    const dispatcher = p.createDispatcher({ clock: clock.now }, client);
    const id = await enqueue(p.stores.outbox, { entity: 'order', key: 'stuck', data: { n: 1 } });
    assert.equal(await dispatcher.dispatchOnce(), 1);
    const handle = client.workflow.getHandle(`${p.config.workflowIdPrefix}${id}`);
    try {
      await waitFor('the workflow task to fail and be tried again', async () => (((await handle.describe()).raw.pendingWorkflowTask?.attempt ?? 0) > 1 ? true : undefined));
      // As if it had been sent two minutes ago: past the SLA by the outbox's clock as well as the dispatcher's.
      await p.stores.outbox.query(`UPDATE outbox_messages SET created_at = created_at - interval '2 minutes' WHERE id = $1`, [id]);

      // Past its lease the reconciler finds the workflow running and leaves it be: only the SLA sees it.
      clock.advance(p.config.leaseMs + 1);
      const reconciled = once(dispatcher.signals, 'reconciled');
      await dispatcher.reconcileOnce();
      assert.equal((await reconciled)[0].action, 'renewed');
      assert.deepEqual((await dispatcher.sweepOverdueOnce()).map((m) => [m.id, m.status]), [[id, 'processing']]);
      await p.catchUpStreams(dispatcher);
      assert.deepEqual(overdueEntries(await p.streamEntries('failed')).map((e) => e.messageId), [String(id)]);

      // The commands an operator runs, side by side: status, inspect (text and JSON) by an operator who
      // holds both keys (so it opens the worker's reason, sealed under k2), and inspect with Temporal away.
      const operator = p.processEnv({ OUTBOX_SYNC_CODEC_KEYS: keysSetting(K2, K1) });
      const closed = await freePort();
      const [statusRun, text, jsonRun, unreachable] = await Promise.all([
        runCli(['status', '--json'], p.processEnv()),
        runCli(['inspect', String(id)], operator),
        runCli(['inspect', String(id), '--json'], operator),
        runCli(['inspect', String(id)], p.processEnv({ TEMPORAL_ADDRESS: `127.0.0.1:${closed}` })),
      ]);
      const status = JSON.parse(statusRun.stdout);
      assert.deepEqual([status.counts.processing, status.overdue], [1, 1]);

      const reason = /key id "k1", which is not configured/;
      assert.equal(text.code, 0, text.stderr);
      const workflowLine = text.stdout.split('\n').find((line) => line.startsWith('workflow     '));
      assert.match(workflowLine ?? '', /^workflow {5}running, making no progress: its workflow task is on attempt \d+; Temporal's reason: /);
      assert.match(workflowLine!, reason);
      assert.match(text.stdout, /^overdue at {3}\d{4}-/m);
      const json = JSON.parse(jsonRun.stdout);
      assert.equal(json.temporal.workflowStatus, 'RUNNING');
      assert.ok(json.temporal.failingWorkflowTask.attempt > 1);
      assert.match(json.temporal.failingWorkflowTask.reason, reason);
      assert.ok(json.overdueAt);

      // Temporal unreachable: inspect still shows the message, and says so in words.
      assert.equal(unreachable.code, 0, unreachable.stderr);
      assert.match(unreachable.stdout, new RegExp(`^workflow {5}Temporal could not be asked: TEMPORAL_ADDRESS \\(127\\.0\\.0\\.1:${closed}\\): the connection was refused$`, 'm'));
      assert.match(unreachable.stdout, /^status {7}processing$/m);
    } finally {
      await handle.terminate('test over').catch(() => undefined);
    }
  });
});
