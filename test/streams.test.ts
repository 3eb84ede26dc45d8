/**
 * The success and failure streams, written by the dispatcher's publisher from the outbox's record of
 * transitions (dispatcher/publish.ts, stores/outbox/stream-cursor.ts): every transition to completed,
 * failed and dead, by whichever part made it, is appended at least once — through a Redis outage longer
 * than any step's retries, with two publishers at once, and across a dispatcher's restart.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import pg from 'pg';
import { pgSettings } from '../stores/postgres/connect';
import { enqueue, enqueueBatch } from '../stores/outbox/enqueue';
import { pruneCompleted, readMessage } from '../stores/outbox/messages';
import { claimPending, FailureKind, recordCompleted, recordFailure, retryMessages } from '../stores/outbox/state-machine';
import { readStreamCursor } from '../stores/outbox/stream-cursor';
import { inTransaction } from '../stores/postgres/transaction';
import type { DispatcherLogger } from '../dispatcher/dispatcher';
import { ManualClock } from './support/clock';
import { spawnCli } from './support/processes';
import { TestPipeline, waitFor } from './support/pipeline';
import { databaseUrl, getStack } from './support/stack';

type Entry = Record<string, string>;

/** A target trigger that fails every write of `key` for a reason that looks transient (as an outage would). */
const REFUSE_KEY = (key: string) => `
  CREATE FUNCTION refuse_key() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN RAISE EXCEPTION 'the target cannot take this record' USING ERRCODE = '55000'; END $$;
  CREATE TRIGGER refuse_key BEFORE INSERT OR UPDATE ON synced_records
    FOR EACH ROW WHEN (NEW.entity_key = '${key}') EXECUTE FUNCTION refuse_key();`;

/** A logger that keeps its lines. */
function recordingLogger(): DispatcherLogger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  return {
    lines,
    info: (message) => lines.push({ level: 'info', message }),
    warn: (message) => lines.push({ level: 'warn', message }),
    error: (message) => lines.push({ level: 'error', message }),
  };
}

/** The entries of a stream for one message, as `status/attempt`. */
function story(entries: Entry[], id: number): string[] {
  return entries.filter((e) => e.messageId === String(id)).map((e) => `${e.status}/${e.attempt}`);
}

/** Entries that repeat another entry's transition. */
function repeats(entries: Entry[]): Entry[] {
  const seen = new Set<string>();
  return entries.filter((e) => seen.has(e.transition!) || !seen.add(e.transition!));
}

describe('streams: every completed, failed and dead transition is appended, whatever Redis did', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline | undefined;
  let targetLock: pg.Client | undefined;

  afterEach(async () => {
    // A test that failed while it held the target's lock: ended, its transaction rolls back, so that the
    // lock does not outlive the test (an open transaction would hold every publisher on the server back).
    await targetLock?.end().catch(() => undefined);
    targetLock = undefined;
    await pipeline?.close();
    pipeline = undefined;
  });

  it('appends the transitions of each part: the activities, the redriver, the reconciler, and an operator’s retry then the completion', async () => {
    const p = (pipeline = await TestPipeline.create());
    const { outbox } = p.stores;
    const leaseMs = 60_000;
    const clock = new ManualClock();

    // The redriver and the reconciler, driven by hand on a clock, before any worker runs: one message
    // failed and out of executions, one claimed whose workflow never started, past its lease.
    const [exhausted, orphan] = await enqueueBatch(outbox, [
      { entity: 'order', key: 'exhausted', version: 4, data: { n: 1 } },
      { entity: 'order', key: 'orphan', version: 5, data: { n: 2 } },
    ]);
    const claims = await claimPending(outbox, { limit: 10, leaseMs, workflowIdPrefix: p.config.workflowIdPrefix, now: clock.now() });
    assert.deepEqual(claims.map((c) => c.id), [exhausted, orphan]);
    const failure = { error: 'persistToTarget: the target is down', kind: FailureKind.transient, retryInMs: 600_000, maxExecutions: 10 };
    assert.equal((await recordFailure(outbox, { id: exhausted!, execution: 1 }, failure)).moved, true);
    // A lower maximum than the one the failure was recorded under: the redriver declares it dead.
    const maintenance = p.createDispatcher({ maxExecutions: 1, leaseMs, clock: clock.now });
    await maintenance.redriveOnce();
    clock.advance(leaseMs + 1);
    const reconciled = once(maintenance.signals, 'reconciled');
    await maintenance.reconcileOnce();
    assert.equal((await reconciled)[0].action, 'dead');
    assert.equal((await readMessage(outbox, exhausted!))!.status, 'dead');
    assert.equal((await readMessage(outbox, orphan!))!.status, 'dead');
    await p.catchUpStreams(maintenance);
    let failed = await p.streamEntries('failed');
    assert.deepEqual(story(failed, exhausted!), ['failed/1', 'dead/1'], 'the activity-like failure, then the redriver’s dead');
    assert.deepEqual(story(failed, orphan!), ['dead/1'], 'the reconciler’s dead');
    const orphanDead = failed.find((e) => e.messageId === String(orphan))!;
    assert.deepEqual(
      { entity: orphanDead.entity, key: orphanDead.key, version: orphanDead.version },
      { entity: 'order', key: 'orphan', version: '5' },
    );
    assert.match(orphanDead.error!, /workflow ended without recording an outcome/);

    // The activities, in the running pipeline: a completion, a permanent fault (dead at once), and a
    // transient one that fails every execution (failed, failed, dead).
    await p.targetAdmin(REFUSE_KEY('flaky'));
    const { rows } = await outbox.query(`INSERT INTO outbox_messages (entity, entity_key, data) VALUES ('order', 'bad', '[1]') RETURNING id`);
    const bad = Number(rows[0].id);
    const [ok, flaky] = await enqueueBatch(outbox, [
      { entity: 'order', key: 'ok', version: 7, data: { ok: true } },
      { entity: 'order', key: 'flaky', version: 8, data: { flaky: true } },
    ]);
    await p.startWorker();
    p.startDispatcher();
    await p.waitForStatus([ok!], ['completed']);
    await p.waitForStatus([bad, flaky!], ['dead'], 60_000);
    const max = p.config.maxExecutions;
    const expectedFlaky = [...Array.from({ length: max - 1 }, (_, i) => `failed/${i + 1}`), `dead/${max}`];
    failed = await waitFor('the activities’ failures on the failure stream', async () => {
      const entries = await p.streamEntries('failed');
      return story(entries, flaky!).length === max && story(entries, bad).length === 1 ? entries : undefined;
    });
    assert.deepEqual(story(failed, bad), ['dead/1']);
    assert.match(failed.find((e) => e.messageId === String(bad))!.error!, /InvalidMessage/);
    assert.deepEqual(story(failed, flaky!), expectedFlaky);
    const succeeded = await waitFor('the completion on the success stream', async () => {
      const entries = await p.streamEntries('succeeded');
      return story(entries, ok!).length > 0 ? entries : undefined;
    });
    const done = succeeded.find((e) => e.messageId === String(ok))!;
    assert.deepEqual(
      { entity: done.entity, key: done.key, version: done.version, status: done.status, attempt: done.attempt },
      { entity: 'order', key: 'ok', version: '7', status: 'completed', attempt: '1' },
    );

    // An operator's retry sends the dead message through again; its completion reaches the success stream.
    await p.targetAdmin('DROP TRIGGER refuse_key ON synced_records');
    assert.deepEqual(await retryMessages(outbox, { ids: [flaky!] }, { actor: 'cli' }), [flaky]);
    await p.waitForStatus([flaky!], ['completed'], 60_000);
    const after = await waitFor('the retried message’s completion', async () => {
      const entries = await p.streamEntries('succeeded');
      return story(entries, flaky!).length > 0 ? entries : undefined;
    });
    assert.equal(story(after, flaky!).length, 1);
    assert.match(story(after, flaky!)[0]!, /^completed\/[12]$/, 'a fresh count of executions');
    assert.deepEqual(repeats([...after, ...(await p.streamEntries('failed'))]), [], 'no transition appended twice');
  });

  it('appends every completion and every death that happened while Redis was cut for longer than the steps’ retries, once it is back, saying so in one line', async () => {
    // Two tries per step and two executions: a message that cannot be staged is dead within seconds.
    const env = { OUTBOX_SYNC_ACTIVITY_TIMEOUT_MS: '30000', OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '2', OUTBOX_SYNC_MAX_EXECUTIONS: '2' };
    const p = (pipeline = await TestPipeline.create({ proxyRedis: true, env }));
    const { outbox, cache } = p.stores;
    const logger = recordingLogger();
    // The target is locked: every message is staged in Redis, then waits at its target write.
    const lock = (targetLock = new pg.Client(pgSettings(databaseUrl(getStack().postgresUrl, `${p.name}_target`))));
    await lock.connect();
    await lock.query('BEGIN');
    await lock.query('LOCK TABLE synced_records IN ACCESS EXCLUSIVE MODE');
    const completing = await enqueueBatch(outbox, Array.from({ length: 20 }, (_, i) => ({ entity: 'order', key: `c${i}`, version: 1, data: { i } })));
    await p.startWorker();
    const dispatcher = p.startDispatcher({}, logger);
    let failedPasses = 0;
    const onPass = (pass: object) => {
      if ('failed' in pass) failedPasses++;
    };
    dispatcher.signals.on('published', onPass);
    await waitFor('every message staged', async () => {
      const staged = await Promise.all(completing.map((_, i) => cache.read('order', `c${i}`)));
      return staged.every((copy) => copy !== null) ? true : undefined;
    });

    // Redis goes; then the target writes go through (the data comes from the outbox) and complete.
    p.redisProxy!.refuse();
    await lock.query('COMMIT');
    await lock.end();
    targetLock = undefined;
    // Messages that arrive now cannot be staged: every execution fails, and they end dead.
    const dying = await enqueueBatch(outbox, Array.from({ length: 5 }, (_, i) => ({ entity: 'order', key: `d${i}`, version: 1, data: { i } })));
    await p.waitForStatus(completing, ['completed'], 60_000);
    await p.waitForStatus(dying, ['dead'], 90_000);
    // Redis stays away well past the steps' retries (those of the dying messages ran out twice over),
    // until the publisher has failed three more passes after the last death.
    assert.ok(failedPasses > 0, 'the publisher tried while Redis was away');
    failedPasses = 0;
    await waitFor('three failed publisher passes after the last death', async () => (failedPasses >= 3 ? true : undefined), 60_000);
    const down = logger.lines.filter((l) => /streams:/.test(l.message));
    assert.equal(down.length, 1, `one line while Redis is down, whatever the passes: ${JSON.stringify(down)}`);
    assert.match(down[0]!.message, /^streams: Redis at 127\.0\.0\.1:\d+ \(REDIS_URL\) does not answer.*; the transitions wait in the outbox and are appended once it answers$/);
    assert.equal(down[0]!.level, 'warn');

    await p.redisProxy!.restore();
    const max = p.config.maxExecutions;
    const [succeeded, failed] = await waitFor('every transition on its stream', async () => {
      const s = await p.streamEntries('succeeded');
      const f = await p.streamEntries('failed');
      const allDone = completing.every((id) => story(s, id).length > 0);
      const allDead = dying.every((id) => story(f, id).includes(`dead/${max}`));
      return allDone && allDead ? [s, f] : undefined;
    }, 60_000);
    dispatcher.signals.off('published', onPass);
    for (const id of completing) assert.deepEqual(story(succeeded, id), ['completed/1'], `message ${id}`);
    for (const id of dying) {
      assert.deepEqual(story(failed, id), [...Array.from({ length: max - 1 }, (_, i) => `failed/${i + 1}`), `dead/${max}`], `message ${id}`);
    }
    // Said once the pass that appended them is over.
    const lines = await waitFor('the line that Redis answers again', async () => {
      const found = logger.lines.filter((l) => /streams:/.test(l.message));
      return found.length >= 2 ? found : undefined;
    });
    assert.equal(lines.length, 2, JSON.stringify(lines));
    assert.match(lines[1]!.message, /^streams: Redis at .* \(REDIS_URL\) answers again/);
  });

  it('appends each transition once, with no gap, with two publishers at once and a transaction that commits behind a later one', async () => {
    const p = (pipeline = await TestPipeline.create());
    const { outbox } = p.stores;
    const [first, second] = [p.createDispatcher(), p.createDispatcher()];

    // Two publishers at the same moment, pass after pass, while messages complete: one holds the cursor,
    // the other skips its turn, and every transition is appended exactly once.
    const ids = await enqueueBatch(outbox, Array.from({ length: 300 }, (_, i) => ({ entity: 'order', key: `k${i}`, data: { i } })));
    const claims = await claimPending(outbox, { limit: 300, leaseMs: 60_000, workflowIdPrefix: p.config.workflowIdPrefix });
    let busy = 0;
    for (let i = 0; i < claims.length; i += 30) {
      await Promise.all(claims.slice(i, i + 30).map((c) => recordCompleted(outbox, { id: c.id, execution: c.execution })));
      const passes = await Promise.all([first.publishOnce(50), second.publishOnce(50)]);
      busy += passes.filter((pass) => pass.busy).length;
    }
    await p.catchUpStreams(first);
    const entries = await p.streamEntries('succeeded');
    assert.deepEqual(repeats(entries), [], 'no transition appended twice');
    assert.deepEqual(entries.map((e) => Number(e.messageId)).sort((a, b) => a - b), ids, 'every completion appended');
    assert.ok(busy > 0, 'the publishers met: one of them found the cursor held');

    // A transition whose transaction began first (so its history row has the lower id) commits after a
    // later one: the publisher waits for it rather than moving past it.
    const [early, late] = await enqueueBatch(outbox, [
      { entity: 'order', key: 'early', data: { e: 1 } },
      { entity: 'order', key: 'late', data: { l: 1 } },
    ]);
    const [earlyClaim, lateClaim] = await claimPending(outbox, { limit: 10, leaseMs: 60_000, workflowIdPrefix: p.config.workflowIdPrefix });
    let releaseEarly: () => void = () => undefined;
    let earlyHeld: () => void = () => undefined;
    const holding = new Promise<void>((resolve) => (earlyHeld = resolve));
    const earlyCommitted = inTransaction(outbox, async (client) => {
      assert.equal((await recordCompleted(client, { id: early!, execution: earlyClaim!.execution })).moved, true);
      earlyHeld();
      await new Promise<void>((resolve) => (releaseEarly = resolve));
    });
    try {
      await holding;
      assert.equal((await recordCompleted(outbox, { id: late!, execution: lateClaim!.execution })).moved, true);
      for (let i = 0; i < 3; i++) {
        const pass = await first.publishOnce();
        assert.ok(!pass.busy && pass.appended === 0, 'nothing is appended past a transaction still open');
      }
    } finally {
      releaseEarly();
      await earlyCommitted;
    }
    await p.catchUpStreams(first);
    const tail = (await p.streamEntries('succeeded')).slice(ids.length).map((e) => Number(e.messageId));
    assert.deepEqual(tail, [early, late], 'both, in the order their transactions began');
  });

  it('carries on from the cursor the outbox keeps when a dispatcher process is killed and started again', async () => {
    const p = (pipeline = await TestPipeline.create());
    const { outbox } = p.stores;
    await p.startWorker();
    const before = await enqueueBatch(outbox, Array.from({ length: 10 }, (_, i) => ({ entity: 'order', key: `b${i}`, data: { i } })));
    let dispatcher = spawnCli(['dispatcher'], p.processEnv());
    try {
      await p.waitForStatus(before, ['completed'], 60_000);
      // Appended, and the cursor's move committed: the kill cannot land between the two.
      await waitFor('ten completions appended', async () => ((await readStreamCursor(outbox)).waiting === 0 ? true : undefined));
      assert.equal((await p.streamEntries('succeeded')).length, 10);
      await dispatcher.kill();

      dispatcher = spawnCli(['dispatcher'], p.processEnv());
      await dispatcher.waitFor('dispatcher running');
      const after = await enqueueBatch(outbox, Array.from({ length: 5 }, (_, i) => ({ entity: 'order', key: `a${i}`, data: { i } })));
      await p.waitForStatus(after, ['completed'], 60_000);
      // Entries go out in cursor order: had the new process started again from the beginning, the ten
      // would be there a second time before the five.
      const entries = await waitFor('the five new completions', async () => {
        const found = await p.streamEntries('succeeded');
        return after.every((id) => story(found, id).length > 0) ? found : undefined;
      });
      const appended = entries.map((e) => Number(e.messageId));
      assert.equal(appended.length, 15, `nothing appended again: ${appended.join(' ')}`);
      assert.deepEqual(new Set(appended.slice(0, 10)), new Set(before));
      assert.deepEqual(new Set(appended.slice(10)), new Set(after));
    } finally {
      await dispatcher.stop();
    }
  });

  it('keeps a completed message from prune until its completion is on the success stream', async () => {
    const p = (pipeline = await TestPipeline.create());
    const { outbox } = p.stores;
    const id = await enqueue(outbox, { entity: 'order', key: 'keep', data: { k: 1 } });
    const [claim] = await claimPending(outbox, { limit: 1, leaseMs: 60_000, workflowIdPrefix: p.config.workflowIdPrefix });
    await recordCompleted(outbox, { id, execution: claim!.execution });
    assert.equal(await pruneCompleted(outbox, 0), 0, 'its completion is not on the stream yet');
    await p.catchUpStreams();
    assert.equal(await pruneCompleted(outbox, 0), 1);
    assert.equal(await readMessage(outbox, id), null);
  });
});
