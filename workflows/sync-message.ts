/**
 * The workflow of one message's execution. Bundled into Temporal's deterministic sandbox: it imports no
 * I/O, and the activities as types only.
 *
 *   stageToCache ──▶ persistToTarget (+ record completed)
 *        └────────────────┴──── failure ──▶ recordOutcome(failed)
 *
 * Each step is tried first as a local activity (see LOCAL_STEPS_PATCH; new starts say so in their input).
 * Executions started before that patch ran stageToCache ──▶ persistToTarget ──▶ recordOutcome(completed),
 * each on the task queue.
 */
import { RetryState } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure, patched, proxyActivities, proxyLocalActivities, TemporalFailure, TimeoutFailure, workflowInfo } from '@temporalio/workflow';
import type { SyncActivities } from '../activities/activities';
import { PERMANENT_FAILURE_TYPES } from './failures';

/** Temporal's retries of the cache and target steps within one execution (set from the configuration). */
export interface StepRetrySettings {
  maxAttempts: number;
  initialIntervalMs: number;
  maxIntervalMs: number;
  timeoutMs: number;
}

export interface SyncMessageInput {
  messageId: number;
  /** The execution the claim started; outcomes are recorded against it and no other. */
  execution: number;
  /** The same, as executions started before `execution` was named so carry it. */
  attempt?: number;
  retry: StepRetrySettings;
  /**
   * Set by every start since LOCAL_STEPS_PATCH became the only path for new executions: local-first steps,
   * chosen by the input instead of by patched(), which records a marker and upserts the TemporalChangeVersion
   * search attribute — a visibility write on the server for every message. Executions started without it
   * ask patched() as before, so their histories replay the way they were recorded.
   */
  localSteps?: true;
}

export interface SyncMessageResult {
  /** `skipped` when the message was no longer claimed by this execution (a late or repeated start). */
  status: 'completed' | 'failed' | 'dead' | 'skipped';
  error?: string;
}

/**
 * Executions started by this code try each step first as a local activity: the worker runs it right inside
 * the workflow task and records one marker, instead of a round trip through the server's task queue and
 * three history events (measured: about 2.5x the drain rate on the dev server, and a third of the server's
 * CPU per message). The steps are short and idempotent, so running one again is harmless. A local try that
 * fails for a reason a retry may cure (a part unreachable, a timeout) hands the step to an activity on the
 * task queue with the step's full retry policy, as before: a long outage is retried by the server, without
 * holding a workflow task open or growing the history. A permanent fault fails at once. Histories recorded
 * before this patch replay on the task-queue path they took.
 */
export const LOCAL_STEPS_PATCH = 'local-steps';

export async function syncMessage(input: SyncMessageInput): Promise<SyncMessageResult> {
  const localFirst = input.localSteps === true || patched(LOCAL_STEPS_PATCH);
  const steps = localFirst ? localFirstSteps(input.retry) : taskQueueSteps(input.retry);
  const claim = { messageId: input.messageId, execution: input.execution ?? input.attempt! };
  try {
    const staged = await steps.stageToCache(claim);
    if (staged.state === 'not-claimed') return { status: 'skipped' };
    // A repair (verify --repair) may replace an equal version; the field is left out otherwise, as before.
    const target = { ...claim, entity: staged.entity, key: staged.key, version: staged.version, op: staged.op, ...(staged.overwrite ? { overwrite: true as const } : {}) };
    if (localFirst) {
      // The persist step records the completion itself: no third step on the way that most messages take.
      const persisted = await steps.persistToTarget({ ...target, recordCompleted: true });
      return { status: persisted.status === 'completed' ? 'completed' : 'skipped' };
    }
    await steps.persistToTarget(target);
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const failure = describeFailure(err);
    const recorded = await steps.recordOutcome({ ...claim, outcome: 'failed', error: failure.reason, permanent: failure.permanent });
    const status = recorded.status === 'dead' || recorded.status === 'failed' ? recorded.status : 'skipped';
    return { status, error: failure.reason };
  }
  const recorded = await steps.recordOutcome({ ...claim, outcome: 'completed' });
  return { status: recorded.status === 'completed' ? 'completed' : 'skipped' };
}

type Steps = Pick<SyncActivities, 'stageToCache' | 'persistToTarget' | 'recordOutcome'>;

function stepRetry(retry: StepRetrySettings) {
  return {
    initialInterval: retry.initialIntervalMs,
    maximumInterval: retry.maxIntervalMs,
    backoffCoefficient: 2,
    maximumAttempts: retry.maxAttempts,
    nonRetryableErrorTypes: [...PERMANENT_FAILURE_TYPES],
  };
}

function stepTimeouts(retry: StepRetrySettings) {
  // A Redis write: anything slower than a few seconds is a fault worth retrying.
  return { stage: Math.min(retry.timeoutMs, 10_000), persist: retry.timeoutMs, record: 30_000 };
}

// The outcome must reach the outbox: retried without a limit, so a long outbox outage delays it but never
// drops it.
const RECORD_RETRY = { initialInterval: '500 ms', maximumInterval: '30 seconds', backoffCoefficient: 2 } as const;

function localFirstSteps(retry: StepRetrySettings): Steps {
  const timeouts = stepTimeouts(retry);
  const once = { maximumAttempts: 1 };
  const { stageToCache } = proxyLocalActivities<SyncActivities>({ startToCloseTimeout: timeouts.stage, retry: once });
  const { persistToTarget } = proxyLocalActivities<SyncActivities>({ startToCloseTimeout: timeouts.persist, retry: once });
  const { recordOutcome } = proxyLocalActivities<SyncActivities>({ startToCloseTimeout: timeouts.record, retry: once });
  const queued = taskQueueSteps(retry);
  return {
    stageToCache: localFirst('stageToCache', stageToCache, queued.stageToCache),
    persistToTarget: localFirst('persistToTarget', persistToTarget, queued.persistToTarget),
    recordOutcome: localFirst('recordOutcome', recordOutcome, queued.recordOutcome),
  };
}

/**
 * Events in a history while its first workflow task runs (execution started, task scheduled, task
 * started). Local tries finish inside that task; a longer history means a task was lost or failed.
 */
const FIRST_TASK_HISTORY_LENGTH = 3;

/** Runs the local try; when it fails for a reason a retry may cure, the step goes to the task queue. */
function localFirst<I, O>(step: string, local: (input: I) => Promise<O>, queued: (input: I) => Promise<O>): (input: I) => Promise<O> {
  return async (input) => {
    // A worker that dies during a local try takes the try with it, and the next worker would start it
    // afresh: forever, if the step is what kills the worker. Once a workflow task has been lost, every
    // step goes to the task queue, where the server counts the attempts and the retry policy ends them.
    // (historyLength is the same on replay, so the choice is deterministic.)
    if (workflowInfo().historyLength > FIRST_TASK_HISTORY_LENGTH) return queued(input);
    let failure: ActivityFailure;
    try {
      return await local(input);
    } catch (err) {
      // A local activity that fails on its only attempt may come back as the bare failure of the step.
      if (err instanceof ActivityFailure) failure = err;
      else if (err instanceof TemporalFailure) failure = new ActivityFailure(err.message, step, undefined, RetryState.RETRY_POLICY_NOT_SET, undefined, err);
      else throw err;
    }
    if (isPermanent(failure)) throw failure;
    return queued(input);
  };
}

/** The steps as activities on the task queue: where a failed local try goes, and the whole path of executions started before LOCAL_STEPS_PATCH. */
function taskQueueSteps(retry: StepRetrySettings): Steps {
  const timeouts = stepTimeouts(retry);
  const { stageToCache } = proxyActivities<SyncActivities>({ startToCloseTimeout: timeouts.stage, retry: stepRetry(retry) });
  const { persistToTarget } = proxyActivities<SyncActivities>({ startToCloseTimeout: timeouts.persist, retry: stepRetry(retry) });
  const { recordOutcome } = proxyActivities<SyncActivities>({ startToCloseTimeout: timeouts.record, retry: RECORD_RETRY });
  return { stageToCache, persistToTarget, recordOutcome };
}

function isPermanent(err: ActivityFailure): boolean {
  const cause = err.cause;
  return err.retryState === RetryState.NON_RETRYABLE_FAILURE || (cause instanceof ApplicationFailure && (cause.nonRetryable || PERMANENT_FAILURE_TYPES.includes(cause.type ?? '')));
}

/** One line for `last_error`: which step failed and why, and whether another execution could help. */
function describeFailure(err: ActivityFailure): { reason: string; permanent: boolean } {
  const cause = err.cause;
  const step = err.activityType ?? 'activity';
  let why: string;
  if (cause instanceof ApplicationFailure) why = `${cause.type ?? 'Error'}: ${cause.message}`;
  else if (cause instanceof TimeoutFailure) why = `timed out (${cause.timeoutType})`;
  else why = cause?.message ?? err.message;
  const permanent = isPermanent(err);
  const tries = err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED ? ' (retries exhausted)' : '';
  return { reason: `${step}: ${why}${tries}`.slice(0, 2000), permanent };
}
