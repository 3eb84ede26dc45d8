/**
 * Whether a message's workflow makes progress, as Temporal sees it: a workflow that is running while its
 * workflow task fails again and again (a worker that cannot read the input, a bug in the workflow code)
 * looks alive to the reconciler and never moves; `inspect` shows Temporal's reason for it.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { decodeOptionalFailureToOptionalError } from '@temporalio/common/lib/internal-non-workflow';
import type { temporal } from '@temporalio/proto';

/** A workflow task retried after failing: how many tries so far, and the failure Temporal recorded. */
export interface FailingWorkflowTask {
  attempt: number;
  reason: string;
}

export type WorkflowProgress =
  | { found: false }
  | { found: true; status: string; failingTask: FailingWorkflowTask | null };

/** How long Temporal may take to answer the two calls, together. */
const ASK_TIMEOUT_MS = 5_000;

/**
 * Describes `workflowId`'s latest run. While it runs with a pending workflow task past its first attempt,
 * the reason is the failure of the last WorkflowTaskFailed event of its history (Temporal records the
 * first failure of a run of failing attempts, not each retry).
 */
export async function workflowProgress(client: Client, workflowId: string): Promise<WorkflowProgress> {
  return client.withDeadline(Date.now() + ASK_TIMEOUT_MS, async () => {
    let description;
    try {
      description = await client.workflow.getHandle(workflowId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return { found: false };
      throw err;
    }
    const status = description.status.name;
    const attempt = description.raw.pendingWorkflowTask?.attempt ?? 0;
    if (status !== 'RUNNING' || attempt <= 1) return { found: true, status, failingTask: null };
    const history = await client.workflow.getHandle(workflowId, description.runId).fetchHistory();
    const failed = [...(history.events ?? [])].reverse().find((event) => event.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes;
    return { found: true, status, failingTask: { attempt, reason: await failureMessage(client, failed?.failure) } };
  });
}

/** The failure's message, opened with the client's codec when it was sealed (OUTBOX_SYNC_CODEC_KEYS). */
async function failureMessage(client: Client, failure: temporal.api.failure.v1.IFailure | null | undefined): Promise<string> {
  if (!failure) return 'Temporal recorded no failure for it';
  try {
    const error = await decodeOptionalFailureToOptionalError(client.options.loadedDataConverter, failure);
    return error?.message || failure.message || 'the failure has no message';
  } catch (err) {
    return `${failure.message ?? 'the failure'} (this process cannot open it: ${(err as Error).message})`;
  }
}
