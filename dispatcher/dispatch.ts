import { claimPending } from '../stores/outbox/state-machine';
import type { Duty } from './dispatcher';

/**
 * The dispatcher's first duty: starts what an earlier pass could not, then claims one batch of pending
 * messages (pending → processing) and starts their workflows. Returns how many were claimed; claims
 * nothing while Temporal refuses starts, so an outage does not pull the whole backlog into processing.
 */
export async function dispatchPending({ pool, settings, starter, metrics, signals, clock }: Duty): Promise<number> {
  if (starter.waiting && !(await starter.retryWaiting())) return 0;
  const claimed = await claimPending(pool, {
    limit: settings.claimBatchSize,
    leaseMs: settings.leaseMs,
    workflowIdPrefix: settings.workflowIdPrefix,
    maxInFlight: settings.maxInFlight,
    now: clock(),
  });
  if (claimed.length > 0) signals.emit('claimed', claimed, 'dispatch');
  const started = await starter.startAll(claimed);
  if (metrics) {
    const now = Date.now();
    for (const m of started) metrics.startDelay.observe((now - m.createdAt.getTime()) / 1000);
  }
  return starter.waiting ? 0 : claimed.length;
}
