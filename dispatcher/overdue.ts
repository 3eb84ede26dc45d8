import { markOverdue, type OverdueMessage } from '../stores/outbox/overdue';
import type { Duty } from './dispatcher';

/** Messages marked per statement; a sweep goes on while statements come back full. */
export const OVERDUE_BATCH = 1_000;

/** Ids named in the sweep's log line; the count says how many there were. */
const LOGGED_IDS = 20;

/**
 * The SLA's sweep: marks the messages past OUTBOX_SYNC_SLA_SECONDS that no sweep has marked yet, each with
 * a status-history row the publisher appends to the failure stream as `overdue` (stores/outbox/overdue.ts),
 * and says so in one line. Nothing without an SLA. Returns what it marked.
 */
export async function sweepOverdue({ pool, settings, logger, signals, clock }: Duty): Promise<OverdueMessage[]> {
  const slaSeconds = settings.slaSeconds ?? null;
  if (slaSeconds === null) return [];
  const marked: OverdueMessage[] = [];
  for (;;) {
    const batch = await markOverdue(pool, { slaSeconds, limit: OVERDUE_BATCH, now: clock() });
    marked.push(...batch);
    if (batch.length < OVERDUE_BATCH) break;
  }
  if (marked.length > 0) {
    logger.warn(`messages not completed within the SLA of ${slaSeconds} s (OUTBOX_SYNC_SLA_SECONDS)`, {
      count: marked.length,
      messageIds: marked.slice(0, LOGGED_IDS).map((m) => m.id),
    });
    signals.emit('overdue', marked);
  }
  return marked;
}
