import { placementOf } from '../stores/target/mapping';
import { WorkflowNotFoundError } from '@temporalio/client';
import { findLeaseExpired } from '../stores/outbox/messages';
import { FailureKind, claimAbandoned, recordFailure, renewLease, type ClaimedMessage } from '../stores/outbox/state-machine';
import { workflowIdFor } from '../temporal/workflow-id';
import type { Duty } from './dispatcher';

/** Workflows the reconciler asks Temporal about at once. */
const RECONCILE_CONCURRENCY = 16;

/** What the reconciler did with a message whose lease had ended. */
export type Reconciliation = 'renewed' | 'restarted' | 'dead' | 'moved-on';

/**
 * The reconciler: for each message left in processing past its lease, asks Temporal whether its workflow
 * runs. If it does, the lease is renewed; if not (the dispatcher died between claim and start, an operator
 * terminated it, Temporal lost it), a new execution starts, or the message is dead when none is left.
 * Returns how many were restarted. The checks go to Temporal a few at a time, so that a pass over a
 * backlog deep enough to outlast the lease does not hold up dispatching for a round trip per message.
 */
export async function reconcileExpired(duty: Duty): Promise<number> {
  // Messages this process is still starting are not stuck.
  const expired = (await findLeaseExpired(duty.pool, { limit: duty.settings.claimBatchSize, now: duty.clock() })).filter(
    (m) => !duty.starter.isWaiting(m.id),
  );
  let restarted = 0;
  for (let i = 0; i < expired.length; i += RECONCILE_CONCURRENCY) {
    const results = await Promise.all(expired.slice(i, i + RECONCILE_CONCURRENCY).map((m) => reconcileMessage(duty, m)));
    restarted += results.filter((r) => r === 'restarted').length;
  }
  return restarted;
}

async function reconcileMessage(duty: Duty, message: ClaimedMessage): Promise<Reconciliation> {
  const action = await decide(duty, message);
  duty.signals.emit('reconciled', { messageId: message.id, execution: message.execution, action });
  return action;
}

async function decide({ pool, client, settings, starter, logger, metrics, clock }: Duty, message: ClaimedMessage): Promise<Reconciliation> {
  const ref = { id: message.id, execution: message.execution, now: clock() };
  if (await workflowRuns(client, workflowIdFor(message.id, settings.workflowIdPrefix))) {
    // Not renewed: the execution recorded its outcome meanwhile, and the lease is gone with the claim.
    return (await renewLease(pool, { ...ref, leaseMs: settings.leaseMs })) ? 'renewed' : 'moved-on';
  }
  if (message.execution >= settings.maxExecutions) {
    const error = 'workflow ended without recording an outcome, and no executions are left';
    const result = await recordFailure(pool, ref, { error, kind: FailureKind.transient, retryInMs: 0, maxExecutions: settings.maxExecutions });
    if (!result.moved) return 'moved-on';
    logger.warn('message declared dead', { messageId: message.id, error });
    metrics?.outcomes.inc({ status: 'dead', target: placementOf(settings.targets ?? null, result.message.entity).database });
    return 'dead';
  }
  const claim = await claimAbandoned(pool, { ...ref, leaseMs: settings.leaseMs });
  if (!claim) return 'moved-on'; // its outcome was recorded meanwhile
  logger.warn('restarting a message whose workflow is gone', { messageId: message.id, execution: claim.execution });
  await starter.startAll([claim]);
  metrics?.reexecutions.inc({ reason: 'reconcile' });
  return 'restarted';
}

async function workflowRuns(client: Duty['client'], workflowId: string): Promise<boolean> {
  try {
    const description = await client.workflow.getHandle(workflowId).describe();
    return description.status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
