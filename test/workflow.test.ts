/**
 * `syncMessage` itself, on the real Temporal dev server of the run, with its activities stubbed: plain
 * functions that record each call (on the task queue or local, the step's input) and return or throw what
 * the case needs. These are the paths a whole-pipeline run cannot steer on purpose: which steps run
 * locally, when a step goes to the task queue, how a failure is classified, and both sides of
 * LOCAL_STEPS_PATCH. Each test has its own task queue; retries use intervals of milliseconds.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, type Duration } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { OutcomeInput, PersistInput, StageOutcome } from '../activities/activities';
import { LOCAL_STEPS_PATCH, type SyncMessageInput, type SyncMessageResult } from '../workflows/sync-message';
import { waitFor } from './support/pipeline';
import { getStack } from './support/stack';

const { EventType } = temporal.api.enums.v1;

type Step = 'stageToCache' | 'persistToTarget' | 'recordOutcome';
type Where = 'local' | 'queued';

interface StepCall {
  step: Step;
  where: Where;
  input: any;
}

/** What a stubbed step does when called; `where` tells the local try from the task-queue activity. */
type StepBehaviour = (input: any, where: Where) => Promise<unknown>;

const STAGED: StageOutcome = { state: 'staged', entity: 'order', key: '42', version: '7', op: 'upsert', cache: 'staged' };

/** Steps that succeed: the message staged, persisted (with the completion when asked), the outcome recorded. */
const SUCCEEDING: Record<Step, StepBehaviour> = {
  stageToCache: async () => STAGED,
  persistToTarget: async (input: PersistInput) => ({ applied: true, from: 'cache', ...(input.recordCompleted ? { status: 'completed' } : {}) }),
  recordOutcome: async (input: OutcomeInput) => ({ status: input.outcome === 'completed' ? 'completed' : input.permanent ? 'dead' : 'failed' }),
};

/** Stub activities that record every call, in the order they were made. */
function stubSteps(behaviours: Partial<Record<Step, StepBehaviour>> = {}) {
  const calls: StepCall[] = [];
  const activities = Object.fromEntries(
    (Object.keys(SUCCEEDING) as Step[]).map((step) => [
      step,
      async (input: unknown) => {
        const where: Where = Context.current().info.isLocal ? 'local' : 'queued';
        calls.push({ step, where, input });
        return (behaviours[step] ?? SUCCEEDING[step])(input, where);
      },
    ]),
  );
  return {
    activities,
    calls,
    /** Where each call of one step ran, in order. */
    where: (step: Step) => calls.filter((c) => c.step === step).map((c) => c.where),
    inputs: (step: Step) => calls.filter((c) => c.step === step).map((c) => c.input),
  };
}

function input(retry: Partial<SyncMessageInput['retry']> = {}): SyncMessageInput {
  // As the dispatcher starts it (dispatcher/start-execution.ts).
  return { messageId: 42, execution: 1, retry: { maxAttempts: 3, initialIntervalMs: 10, maxIntervalMs: 20, timeoutMs: 5_000, ...retry }, localSteps: true };
}

interface RunOptions {
  workflowBundle?: WorkflowBundleWithSourceMap;
  input?: SyncMessageInput;
  workflowTaskTimeout?: Duration;
}

/** Runs one execution of `syncMessage` to its end on a worker of its own; returns its result and history. */
async function runSyncMessage(stubs: ReturnType<typeof stubSteps>, options: RunOptions = {}) {
  const { client, namespace, nativeConnection, workflowBundle } = getStack();
  const taskQueue = `workflow-test-${randomUUID()}`;
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace,
    taskQueue,
    workflowBundle: options.workflowBundle ?? workflowBundle,
    activities: stubs.activities,
  });
  const handle = await client.workflow.start('syncMessage', {
    taskQueue,
    workflowId: taskQueue,
    args: [options.input ?? input()],
    ...(options.workflowTaskTimeout ? { workflowTaskTimeout: options.workflowTaskTimeout } : {}),
  });
  const result: SyncMessageResult = await worker.runUntil(handle.result());
  const history = await handle.fetchHistory();
  return { result, history, handle };
}

function events(history: temporal.api.history.v1.IHistory, type: temporal.api.enums.v1.EventType) {
  return (history.events ?? []).filter((e) => e.eventType === type);
}

/** The patch ids the execution recorded (markers `core_patch`). */
function patchMarkers(history: temporal.api.history.v1.IHistory): string[] {
  return events(history, EventType.EVENT_TYPE_MARKER_RECORDED)
    .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details!['patch-data'].payloads![0].data!).toString('utf8')).id);
}

describe('the syncMessage workflow with stubbed activities', () => {
  describe('a new execution (local steps, chosen by its input)', () => {
    it('runs stage and persist as local activities, the persist step recording the completion, with no patch marker or search-attribute upsert', async () => {
      const stubs = stubSteps();
      const { result, history } = await runSyncMessage(stubs);
      assert.deepEqual(result, { status: 'completed' });
      assert.deepEqual(
        stubs.calls.map((c) => `${c.step} ${c.where}`),
        ['stageToCache local', 'persistToTarget local'],
      );
      assert.deepEqual(stubs.inputs('stageToCache'), [{ messageId: 42, execution: 1 }]);
      assert.deepEqual(stubs.inputs('persistToTarget'), [{ messageId: 42, execution: 1, entity: 'order', key: '42', version: '7', op: 'upsert', recordCompleted: true }]);
      // patched() would record a marker and upsert TemporalChangeVersion: a visibility write per message.
      assert.deepEqual(patchMarkers(history), []);
      assert.equal(events(history, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES).length, 0, 'no search attribute upserted');
      assert.equal(events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).length, 0, 'nothing went to the task queue');
    });

    it('runs local-first and records the patch when started without localSteps, as starts were while LOCAL_STEPS_PATCH chose the path', async () => {
      const stubs = stubSteps();
      const patchEraInput = input();
      delete patchEraInput.localSteps;
      const { result, history } = await runSyncMessage(stubs, { input: patchEraInput });
      assert.deepEqual(result, { status: 'completed' });
      assert.deepEqual(
        stubs.calls.map((c) => `${c.step} ${c.where}`),
        ['stageToCache local', 'persistToTarget local'],
      );
      assert.deepEqual(patchMarkers(history), [LOCAL_STEPS_PATCH]);
      assert.equal(events(history, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES).length, 1, 'patched() upserted TemporalChangeVersion');
    });

    it('reports skipped when the persist step finds the message no longer claimed', async () => {
      const stubs = stubSteps({ persistToTarget: async () => ({ applied: false, from: 'cache', status: 'not-claimed' }) });
      const { result } = await runSyncMessage(stubs);
      assert.deepEqual(result, { status: 'skipped' });
      assert.deepEqual(stubs.where('recordOutcome'), []);
    });
  });

  describe('the local-first hand-off', () => {
    it('hands a stage step whose local try fails transiently to the task queue, and completes', async () => {
      const stubs = stubSteps({
        stageToCache: async (_input, where) => {
          if (where === 'local') throw new Error('redis: connection refused');
          return STAGED;
        },
      });
      const { result } = await runSyncMessage(stubs);
      assert.deepEqual(result, { status: 'completed' });
      assert.deepEqual(stubs.where('stageToCache'), ['local', 'queued']);
      // The hand-off made the history longer than the first workflow task: the lost-task guard sends the
      // steps after it to the task queue as well.
      assert.deepEqual(stubs.where('persistToTarget'), ['queued']);
      assert.equal(stubs.inputs('persistToTarget')[0].recordCompleted, true, 'the persist step still records the completion');
      assert.deepEqual(stubs.where('recordOutcome'), []);
    });

    it('hands a persist step whose local try fails transiently to the task queue, and completes', async () => {
      const stubs = stubSteps({
        persistToTarget: async (input: PersistInput, where) => {
          if (where === 'local') throw new Error('target: connection reset');
          return SUCCEEDING.persistToTarget(input, where);
        },
      });
      const { result } = await runSyncMessage(stubs);
      assert.deepEqual(result, { status: 'completed' });
      assert.deepEqual(stubs.where('stageToCache'), ['local']);
      assert.deepEqual(stubs.where('persistToTarget'), ['local', 'queued']);
      assert.deepEqual(
        stubs.inputs('persistToTarget').map((i) => i.recordCompleted),
        [true, true],
      );
      assert.deepEqual(stubs.where('recordOutcome'), []);
    });
  });

  describe('permanent and transient failures', () => {
    it('fails an InvalidMessage from the local stage try at once, with no task-queue retry, and records it as permanent', async () => {
      const stubs = stubSteps({
        stageToCache: async () => {
          throw ApplicationFailure.nonRetryable('data: must be a JSON object', 'InvalidMessage');
        },
      });
      const { result } = await runSyncMessage(stubs);
      assert.deepEqual(stubs.where('stageToCache'), ['local']);
      assert.deepEqual(stubs.where('persistToTarget'), []);
      const [outcome] = stubs.inputs('recordOutcome');
      assert.deepEqual(outcome, { messageId: 42, execution: 1, outcome: 'failed', error: 'stageToCache: InvalidMessage: data: must be a JSON object', permanent: true });
      assert.deepEqual(result, { status: 'dead', error: outcome.error });
    });

    it('fails a TargetRejected from the local persist try at once, with no task-queue retry, and records it as permanent', async () => {
      const stubs = stubSteps({
        persistToTarget: async () => {
          throw ApplicationFailure.create({ type: 'TargetRejected', message: 'the target refused the record: value too long', nonRetryable: true });
        },
      });
      const { result } = await runSyncMessage(stubs);
      assert.deepEqual(stubs.where('persistToTarget'), ['local']);
      const [outcome] = stubs.inputs('recordOutcome');
      assert.equal(outcome.permanent, true);
      assert.equal(outcome.error, 'persistToTarget: TargetRejected: the target refused the record: value too long');
      assert.deepEqual(result, { status: 'dead', error: outcome.error });
    });

    it('treats a permanent failure type as permanent even when the failure is not marked non-retryable', async () => {
      const stubs = stubSteps({
        persistToTarget: async () => {
          throw ApplicationFailure.retryable('the target refused the record', 'TargetRejected');
        },
      });
      await runSyncMessage(stubs);
      assert.deepEqual(stubs.where('persistToTarget'), ['local']);
      assert.equal(stubs.inputs('recordOutcome')[0].permanent, true);
    });

    it('does not retry a permanent failure on the task queue after a transient local try', async () => {
      const stubs = stubSteps({
        stageToCache: async (_input, where) => {
          if (where === 'local') throw new Error('redis: connection refused');
          throw ApplicationFailure.nonRetryable('op: must be "upsert" or "delete"', 'InvalidMessage');
        },
      });
      const { result } = await runSyncMessage(stubs, { input: input({ maxAttempts: 5 }) });
      assert.deepEqual(stubs.where('stageToCache'), ['local', 'queued'], 'one queued attempt out of five');
      const [outcome] = stubs.inputs('recordOutcome');
      assert.equal(outcome.permanent, true);
      assert.equal(outcome.error, 'stageToCache: InvalidMessage: op: must be "upsert" or "delete"');
      assert.deepEqual(result, { status: 'dead', error: outcome.error });
    });

    it('records a transient failure that exhausts the step retries as not permanent, saying the retries are exhausted', async () => {
      const stubs = stubSteps({
        persistToTarget: async () => {
          throw new Error('target: connection refused');
        },
      });
      const { result } = await runSyncMessage(stubs, { input: input({ maxAttempts: 2 }) });
      assert.deepEqual(stubs.where('persistToTarget'), ['local', 'queued', 'queued'], 'the local try, then both attempts of the retry policy');
      assert.deepEqual(stubs.where('recordOutcome'), ['queued'], 'the outcome goes to the task queue, as the history is past its first task');
      const [outcome] = stubs.inputs('recordOutcome');
      assert.deepEqual(outcome, {
        messageId: 42,
        execution: 1,
        outcome: 'failed',
        error: 'persistToTarget: Error: target: connection refused (retries exhausted)',
        permanent: false,
      });
      assert.deepEqual(result, { status: 'failed', error: outcome.error });
    });
  });

  describe('a message no longer claimed', () => {
    it('reports skipped and runs no other step when stageToCache finds the message not claimed', async () => {
      const stubs = stubSteps({ stageToCache: async () => ({ state: 'not-claimed' }) });
      const { result } = await runSyncMessage(stubs);
      assert.deepEqual(result, { status: 'skipped' });
      assert.deepEqual(
        stubs.calls.map((c) => c.step),
        ['stageToCache'],
      );
    });
  });

  describe('the lost-task guard', () => {
    let lostFirstTask: WorkflowBundleWithSourceMap;

    before(async () => {
      lostFirstTask = await bundleWorkflowCode({ workflowsPath: require.resolve('./support/lost-first-task'), logger: new DefaultLogger('ERROR') });
    });

    it('sends every step to the task queue once the first workflow task has failed', async () => {
      // The bundle fails the first workflow task, as a worker that dies in it would lose it; the server
      // hands out the task again and the current syncMessage runs in the retried task.
      const stubs = stubSteps({
        persistToTarget: async () => {
          throw ApplicationFailure.nonRetryable('the target refused the record', 'TargetRejected');
        },
      });
      const { result, history } = await runSyncMessage(stubs, { workflowBundle: lostFirstTask });
      assert.equal(events(history, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED).length, 1, 'the first workflow task failed');
      assert.deepEqual(
        stubs.calls.map((c) => `${c.step} ${c.where}`),
        ['stageToCache queued', 'persistToTarget queued', 'recordOutcome queued'],
      );
      assert.equal(result.status, 'dead');
      assert.equal(stubs.inputs('persistToTarget')[0].recordCompleted, true, 'still the local-first path: the guard, not the input, chose the task queue');
    });

    it('sends the steps after a local try that outlasted the workflow task timeout to the task queue', async () => {
      // A local activity that runs past most of the workflow task timeout makes the worker close the task
      // and open another (a workflow task heartbeat): the history grows past the first task while the try
      // runs. The stub's first call returns only once the history shows it, so no timing is guessed.
      const stubs = stubSteps({
        stageToCache: async (_input, where) => {
          if (where === 'local') {
            const handle = getStack().client.workflow.getHandle(Context.current().info.workflowExecution!.workflowId);
            await waitFor('a second workflow task', async () => ((await handle.describe()).historyLength > 3 ? true : undefined), 10_000);
          }
          return STAGED;
        },
      });
      const { result } = await runSyncMessage(stubs, { workflowTaskTimeout: '1 second' });
      assert.deepEqual(result, { status: 'completed' });
      assert.deepEqual(
        stubs.calls.map((c) => `${c.step} ${c.where}`),
        ['stageToCache local', 'persistToTarget queued'],
      );
    });
  });

  describe('an execution started before LOCAL_STEPS_PATCH', () => {
    let prePatchStart: WorkflowBundleWithSourceMap;

    before(async () => {
      prePatchStart = await bundleWorkflowCode({ workflowsPath: require.resolve('./support/pre-patch-start'), logger: new DefaultLogger('ERROR') });
    });

    it('finishes on the task-queue path when the current code takes over an execution the earlier code started', async () => {
      // The earlier code's worker runs the first workflow task (stageToCache scheduled on the task queue,
      // no patch marker) and stops; a worker of the current code replays that task (patched() is false:
      // the marker is not in the history) and takes the pre-patch path to the end.
      const { client, namespace, nativeConnection, workflowBundle } = getStack();
      const taskQueue = `workflow-test-${randomUUID()}`;
      // Started as the earlier dispatcher did: the execution named `attempt` in the input.
      const { execution, ...earlierInput } = input();
      delete earlierInput.localSteps;
      const handle = await client.workflow.start('syncMessage', { taskQueue, workflowId: taskQueue, args: [{ ...earlierInput, attempt: execution }] });
      // No cache: the earlier worker leaves no sticky queue behind that the next task would wait on.
      const earlier = await Worker.create({ connection: nativeConnection, namespace, taskQueue, workflowBundle: prePatchStart, maxCachedWorkflows: 0 });
      await earlier.runUntil(
        waitFor('stageToCache scheduled by the earlier code', async () => {
          const history = await handle.fetchHistory();
          return events(history, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).length > 0 ? true : undefined;
        }),
      );
      const stubs = stubSteps();
      const current = await Worker.create({ connection: nativeConnection, namespace, taskQueue, workflowBundle, activities: stubs.activities });
      const result = await current.runUntil(handle.result());
      assert.deepEqual(result, { status: 'completed' });
      assert.deepEqual(
        stubs.calls.map((c) => `${c.step} ${c.where}`),
        ['stageToCache queued', 'persistToTarget queued', 'recordOutcome queued'],
      );
      assert.equal(stubs.inputs('persistToTarget')[0].recordCompleted, undefined, 'the persist step does not record the completion');
      // The step the earlier code scheduled keeps the input it recorded; the activities accept both names.
      assert.deepEqual(stubs.inputs('stageToCache'), [{ messageId: 42, attempt: 1 }]);
      assert.deepEqual(stubs.inputs('recordOutcome'), [{ messageId: 42, execution: 1, outcome: 'completed' }]);
      assert.deepEqual(patchMarkers(await handle.fetchHistory()), []);
    });
  });
});
