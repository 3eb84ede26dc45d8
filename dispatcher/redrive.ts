import { placementOf } from '../stores/target/mapping';
import { claimFailedDue, markDeadExhausted } from '../stores/outbox/state-machine';
import type { Duty } from './dispatcher';

export interface RedriveBackoff {
  baseMs: number;
  maxMs: number;
}

/**
 * How long a message that failed on its `execution`-th execution waits before the redriver runs it again:
 * doubling from the base, capped. The activities record it with the failure; the redriver claims the
 * message once it has passed.
 */
export function redriveDelayMs(execution: number, { baseMs, maxMs }: RedriveBackoff): number {
  return Math.min(baseMs * 2 ** (Math.max(1, execution) - 1), maxMs);
}

/**
 * The redriver: declares dead the failed messages out of executions (failed → dead), and runs again the
 * ones whose backoff has passed (failed → processing). Returns how many it restarted.
 */
export async function redriveFailed({ pool, settings, starter, logger, metrics, signals, clock }: Duty): Promise<number> {
  const dead = await markDeadExhausted(pool, { maxExecutions: settings.maxExecutions, now: clock() });
  if (dead.length > 0) {
    logger.warn('failed messages declared dead', { count: dead.length });
    for (const message of dead) metrics?.outcomes.inc({ status: 'dead', target: placementOf(settings.targets ?? null, message.entity).database });
  }
  if (starter.waiting) return 0;
  const due = await claimFailedDue(pool, {
    limit: settings.claimBatchSize,
    leaseMs: settings.leaseMs,
    maxExecutions: settings.maxExecutions,
    maxInFlight: settings.maxInFlight,
    now: clock(),
  });
  if (due.length === 0) return 0;
  signals.emit('claimed', due, 'redrive');
  await starter.startAll(due);
  metrics?.reexecutions.inc({ reason: 'redrive' }, due.length);
  return due.length;
}
