/**
 * The statuses of an outbox message, and what each means. They change only through the transitions of
 * state-machine.ts, whose diagram shows who makes each move. Pure declarations: the outbox page's front
 * end imports them too.
 *
 * - pending: accepted, waiting for a dispatcher to claim it.
 * - processing: claimed; a workflow `outbox-message-<id>` is (or is about to be) running for it, until
 *   `lease_ends_at`. The reconciler checks on a message left here past its lease.
 * - completed: the target holds this version or a newer one.
 * - failed: the last execution failed; `last_error` says why; the redriver runs it again from `next_run_at`.
 * - dead: failed for good; only an operator's retry brings it back (to pending).
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

/**
 * The statuses of a message not done yet, in which it can be overdue (past the SLA, overdue.ts). Dead is
 * not one: it has a notification of its own, and nothing runs it until an operator does.
 */
export const OPEN_STATUSES: readonly MessageStatus[] = [MessageStatus.pending, MessageStatus.processing, MessageStatus.failed];

/** Why an execution failed: a transient fault may pass on another execution, a permanent one will not. */
export const FailureKind = Object.freeze({ transient: 'transient', permanent: 'permanent' } as const);
export type FailureKind = (typeof FailureKind)[keyof typeof FailureKind];
