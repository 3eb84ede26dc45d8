export const DEFAULT_WORKFLOW_ID_PREFIX = 'outbox-message-';

/**
 * The workflow id of a message's executions: every run of message 42 is `outbox-message-42`. Deployments
 * that share a Temporal namespace give each outbox its own prefix, since ids restart in every database.
 */
export function workflowIdFor(messageId: number | string, prefix = DEFAULT_WORKFLOW_ID_PREFIX): string {
  return `${prefix}${messageId}`;
}
