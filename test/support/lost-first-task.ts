/**
 * The current `syncMessage`, behind a first workflow task that is lost: it fails (a plain Error thrown by
 * workflow code fails the task, and the server hands the execution out again), as when a worker dies in
 * the middle of a task. The retried task finds a history longer than one task and runs the real workflow.
 */
import { workflowInfo } from '@temporalio/workflow';
import { syncMessage as currentSyncMessage, type SyncMessageInput, type SyncMessageResult } from '../../workflows/sync-message';

/** Events in a history while its first workflow task runs (execution started, task scheduled, started). */
const FIRST_TASK_HISTORY_LENGTH = 3;

export async function syncMessage(input: SyncMessageInput): Promise<SyncMessageResult> {
  if (workflowInfo().historyLength <= FIRST_TASK_HISTORY_LENGTH) throw new Error('the first workflow task is lost');
  return currentSyncMessage(input);
}
