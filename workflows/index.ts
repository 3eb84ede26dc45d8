/**
 * The workflow of one message's execution. Bundled into Temporal's deterministic sandbox: it imports no
 * I/O, and the activities as types only.
 *
 *   stageToCache ──▶ persistToTarget ──▶ recordOutcome(completed)
 *        └────────────────┴──── failure ──▶ recordOutcome(failed)
 */
import { RetryState } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure, proxyActivities, TimeoutFailure } from '@temporalio/workflow';
import type { SyncActivities } from '../activities';

/** Temporal's retries of the cache and target steps within one execution (set from the configuration). */
export interface StepRetrySettings {
  maxAttempts: number;
  initialIntervalMs: number;
  maxIntervalMs: number;
  timeoutMs: number;
}

export interface SyncMessageInput {
  messageId: number;
  /** The execution number the claim started; outcomes are recorded against it and no other. */
  attempt: number;
  retry: StepRetrySettings;
}

export interface SyncMessageResult {
  /** `skipped` when the message was no longer claimed by this execution (a late or repeated start). */
  status: 'completed' | 'failed' | 'dead' | 'skipped';
  error?: string;
}

/** Failure types that no retry can fix. Activities throw them as non-retryable ApplicationFailures. */
export const PERMANENT_FAILURE_TYPES = ['InvalidMessage', 'TargetRejected'];

export async function syncMessage(input: SyncMessageInput): Promise<SyncMessageResult> {
  const { retry } = input;
  const stepRetry = {
    initialInterval: retry.initialIntervalMs,
    maximumInterval: retry.maxIntervalMs,
    backoffCoefficient: 2,
    maximumAttempts: retry.maxAttempts,
    nonRetryableErrorTypes: PERMANENT_FAILURE_TYPES,
  };
  const { stageToCache } = proxyActivities<SyncActivities>({
    // A Redis write: anything slower than a few seconds is a fault worth retrying.
    startToCloseTimeout: Math.min(retry.timeoutMs, 10_000),
    retry: stepRetry,
  });
  const { persistToTarget } = proxyActivities<SyncActivities>({
    startToCloseTimeout: retry.timeoutMs,
    retry: stepRetry,
  });
  // The outcome must reach the outbox: retried without a limit, so a long outbox outage delays it but
  // never drops it.
  const { recordOutcome } = proxyActivities<SyncActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '500 ms', maximumInterval: '30 seconds', backoffCoefficient: 2 },
  });

  const claim = { messageId: input.messageId, attempt: input.attempt };
  try {
    const staged = await stageToCache(claim);
    if (staged.state === 'not-claimed') return { status: 'skipped' };
    await persistToTarget({ ...claim, entity: staged.entity, key: staged.key, version: staged.version, op: staged.op });
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const failure = describeFailure(err);
    const recorded = await recordOutcome({ ...claim, outcome: 'failed', error: failure.reason, permanent: failure.permanent });
    const status = recorded.status === 'dead' || recorded.status === 'failed' ? recorded.status : 'skipped';
    return { status, error: failure.reason };
  }
  const recorded = await recordOutcome({ ...claim, outcome: 'completed' });
  return { status: recorded.status === 'completed' ? 'completed' : 'skipped' };
}

/** One line for `last_error`: which step failed and why, and whether another execution could help. */
function describeFailure(err: ActivityFailure): { reason: string; permanent: boolean } {
  const cause = err.cause;
  const step = err.activityType ?? 'activity';
  let why: string;
  if (cause instanceof ApplicationFailure) why = `${cause.type ?? 'Error'}: ${cause.message}`;
  else if (cause instanceof TimeoutFailure) why = `timed out (${cause.timeoutType})`;
  else why = cause?.message ?? err.message;
  const permanent =
    err.retryState === RetryState.NON_RETRYABLE_FAILURE ||
    (cause instanceof ApplicationFailure && PERMANENT_FAILURE_TYPES.includes(cause.type ?? ''));
  const tries = err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED ? ' (retries exhausted)' : '';
  return { reason: `${step}: ${why}${tries}`.slice(0, 2000), permanent };
}
