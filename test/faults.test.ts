import assert from 'node:assert/strict';
import { enqueue } from '../stores/outbox/enqueue';
import { readMessage } from '../stores/outbox/messages';
import { retryMessages } from '../stores/outbox/state-machine';
import { readRecord } from '../stores/target/synced-records';
import { TestPipeline, waitFor } from './support/pipeline';
import { WorkflowNotFoundError } from '@temporalio/client';
import { workflowIdFor } from '../temporal/workflow-id';

describe('faults: transient ones are retried, permanent ones fail fast, failed messages run again', () => {
  let pipeline: TestPipeline;

  afterEach(async () => {
    await pipeline?.close();
  });

  /** Waits until Temporal is retrying a step of the message's execution (it failed at least once). */
  async function waitForRetriedStep(id: number): Promise<void> {
    const handle = pipeline.client.workflow.getHandle(workflowIdFor(id, pipeline.config.workflowIdPrefix));
    await waitFor('a failed step being retried', async () => {
      const described = await handle.describe().catch((err) => {
        if (err instanceof WorkflowNotFoundError) return undefined; // not started yet
        throw err;
      });
      return described?.raw.pendingActivities?.some((a) => (a.attempt ?? 0) > 1) ? true : undefined;
    });
  }

  for (const part of ['target', 'Redis'] as const) {
    it(`completes a message in one execution when ${part === 'target' ? 'the target' : 'Redis'} refuses connections for a moment`, async () => {
      pipeline = await TestPipeline.create(part === 'target' ? { proxyTarget: true } : { proxyRedis: true });
      const proxy = (part === 'target' ? pipeline.targetProxy : pipeline.redisProxy)!;
      await pipeline.startWorker();
      proxy.refuse();
      pipeline.startDispatcher();
      const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: part, data: { part } });
      // A step fails while the part is unreachable; Temporal retries it.
      await waitForRetriedStep(id);
      await proxy.restore();
      const [done] = await pipeline.waitForStatus([id], ['completed']);
      assert.equal(done!.executions, 1, 'Temporal retried the step inside the first execution');
      assert.deepEqual((await readRecord(pipeline.stores.target, 'order', part))!.data, { part });
    });
  }

  it('fails invalid data at once, with the reason in the outbox and on the failure stream, while others complete', async () => {
    pipeline = await TestPipeline.create();
    await pipeline.startWorker();
    pipeline.startDispatcher();
    const { outbox } = pipeline.stores;
    // Producers writing plain SQL can store what the API would refuse; it fails alone, later.
    const { rows } = await outbox.query(
      `INSERT INTO outbox_messages (entity, entity_key, data) VALUES ('order', 'bad', '[1, 2]'), ('order', 'nodata', NULL) RETURNING id`,
    );
    const [bad, noData] = rows.map((r) => Number(r.id));
    const good = await enqueue(outbox, { entity: 'order', key: 'good', data: { ok: true } });
    const [failedBad, failedNoData] = await pipeline.waitForStatus([bad!, noData!], ['dead']);
    await pipeline.waitForStatus([good], ['completed']);
    assert.match(failedBad!.lastError!, /stageToCache: InvalidMessage: data: must be a JSON object/);
    assert.match(failedNoData!.lastError!, /data: is required for an upsert/);
    assert.equal(failedBad!.lastErrorKind, 'permanent');
    assert.equal(failedBad!.executions, 1, 'a permanent fault is not executed again');
    const history = await pipeline.client.workflow.getHandle(workflowIdFor(bad!, pipeline.config.workflowIdPrefix)).fetchHistory();
    // The steps run as local activities (one marker each, naming the step and its attempt), or, when the
    // workflow hands them to the task queue (a loaded machine, see the lost-task guard), as activity tasks.
    const scheduled = new Map<string, string>();
    const steps = history.events!.flatMap((e) => {
      const marker = e.markerRecordedEventAttributes;
      if (marker?.markerName === 'core_local_activity') {
        const data = JSON.parse(Buffer.from(marker.details!.data!.payloads![0]!.data!).toString());
        return [{ type: data.activity_type ?? data.activityType, attempt: data.attempt }];
      }
      const queued = e.activityTaskScheduledEventAttributes;
      if (queued) scheduled.set(String(e.eventId), queued.activityType!.name!);
      const started = e.activityTaskStartedEventAttributes;
      if (started) return [{ type: scheduled.get(String(started.scheduledEventId)), attempt: started.attempt }];
      return [];
    });
    assert.deepEqual(steps.map((s) => s.type), ['stageToCache', 'recordOutcome'], 'stage, then recordOutcome: no persist');
    assert.ok(steps.every((s) => s.attempt === 1), 'no step was retried');

    const stream = await waitFor('failure notifications', async () => {
      const entries = await pipeline.streamEntries('failed');
      return entries.length >= 2 ? entries : undefined;
    });
    const forBad = stream.find((f) => Number(f.messageId) === bad)!;
    assert.equal(forBad.status, 'dead');
    assert.match(forBad.error!, /must be a JSON object/);
    assert.equal(await readRecord(pipeline.stores.target, 'order', 'bad'), null);
  });

  it('runs a failed message again once its fault clears, and completes it', async () => {
    pipeline = await TestPipeline.create({
      proxyTarget: true,
      env: { OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '2', OUTBOX_SYNC_REDRIVE_BASE_MS: '1500', OUTBOX_SYNC_MAX_EXECUTIONS: '5' },
    });
    await pipeline.startWorker();
    pipeline.targetProxy!.refuse();
    pipeline.startDispatcher();
    const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: '3', data: { c: 3 } });
    // The outage outlasts Temporal's retries of the step: the execution fails, the message waits.
    const [failed] = await pipeline.waitForStatus([id], ['failed']);
    assert.match(failed!.lastError!, /persistToTarget: .*retries exhausted/);
    assert.equal(failed!.lastErrorKind, 'transient');
    await pipeline.targetProxy!.restore();
    const [done] = await pipeline.waitForStatus([id], ['completed']);
    assert.ok(done!.executions >= 2, `executed again (attempts ${done!.executions})`);
    assert.equal(done!.lastError, null);
    assert.deepEqual((await readRecord(pipeline.stores.target, 'order', '3'))!.data, { c: 3 });
  });

  it('declares a message dead after the maximum executions, and an operator’s retry brings it through', async () => {
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '2', OUTBOX_SYNC_MAX_EXECUTIONS: '3' } });
    // A target that keeps failing for one key: a trigger raising an error no retry can cure.
    await pipeline.targetAdmin(`
      CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'poison record refused by the target'; END $$;
      CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON synced_records
        FOR EACH ROW WHEN (NEW.entity_key = 'poison') EXECUTE FUNCTION refuse_poison();`);
    await pipeline.startWorker();
    pipeline.startDispatcher();
    const { outbox } = pipeline.stores;
    const poison = await enqueue(outbox, { entity: 'order', key: 'poison', data: { p: 1 } });
    const fine = await enqueue(outbox, { entity: 'order', key: 'fine', data: { f: 1 } });
    await pipeline.waitForStatus([fine], ['completed']);
    const [dead] = await pipeline.waitForStatus([poison], ['dead']);
    assert.equal(dead!.executions, 3);
    assert.match(dead!.lastError!, /poison record refused by the target/);

    await pipeline.targetAdmin('DROP TRIGGER refuse_poison ON synced_records');
    assert.deepEqual(await retryMessages(outbox, { ids: [poison] }), [poison]);
    // Back to pending; a dispatcher may already have claimed it again.
    assert.notEqual((await readMessage(outbox, poison))!.status, 'dead');
    const [done] = await pipeline.waitForStatus([poison], ['completed']);
    assert.equal(done!.executions, 1, 'a retry starts a fresh count of executions');
    assert.deepEqual((await readRecord(pipeline.stores.target, 'order', 'poison'))!.data, { p: 1 });
  });
});
