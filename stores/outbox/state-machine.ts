/**
 * The life of an outbox message. Every transition is one guarded SQL statement in outbox/store.ts that
 * names the state (or states) it leaves, so a late or duplicated activity can never move a message back.
 *
 *            claim                 recordCompleted
 *   pending ────────▶ processing ─────────────────▶ completed   (terminal)
 *      ▲                │   ▲
 *      │ recordFailed   │   │ redrive (after a backoff, executions < maximum)
 *      │                ▼   │
 *      │              failed ──────────────────────▶ dead
 *      │                      executions = maximum,
 *      │                      or a permanent fault
 *      └──────────── retry (operator) ─────────────── dead, failed
 *
 * - pending: accepted, waiting for a dispatcher to claim it.
 * - processing: claimed; a workflow `outbox-message-<id>` is (or is about to be) running for it. The
 *   reconciler restarts the workflow of a message left here longer than the lease with none running.
 * - completed: the target holds this version or a newer one.
 * - failed: the last execution failed; `last_error` says why. The redriver runs it again on a backoff.
 * - dead: failed for good; only an operator's `retry` brings it back (to pending).
 */
export const MessageStatus = Object.freeze({
  pending: 'pending',
  processing: 'processing',
  completed: 'completed',
  failed: 'failed',
  dead: 'dead',
} as const);

export type MessageStatus = (typeof MessageStatus)[keyof typeof MessageStatus];

export const ALL_STATUSES: readonly MessageStatus[] = Object.values(MessageStatus);

export const DEFAULT_WORKFLOW_ID_PREFIX = 'outbox-message-';

/**
 * The workflow id of a message's executions: every run of message 42 is `outbox-message-42`. Deployments
 * that share a Temporal namespace give each outbox its own prefix, since ids restart in every database.
 */
export function workflowIdFor(messageId: number | string, prefix = DEFAULT_WORKFLOW_ID_PREFIX): string {
  return `${prefix}${messageId}`;
}
