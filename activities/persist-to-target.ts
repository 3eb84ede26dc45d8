import { ApplicationFailure, log } from '@temporalio/activity';
import { readMessageWithText } from '../stores/outbox/messages';
import type { Op } from '../stores/outbox/validate';
import { TargetRejected } from '../stores/target/targets';
import { FailureType } from '../workflows/failures';
import type { ActivityDeps, Claim } from './claim';
import { completion } from './record-outcome';

export interface PersistInput extends Claim {
  entity: string;
  key: string;
  version: string;
  op: Op;
  /** A repair: an equal version in the target is replaced (verify --repair). */
  overwrite?: true;
  /** Also record the completed outcome, as recordOutcome does: one step (and round trip) fewer. */
  recordCompleted?: boolean;
}

export interface PersistResult {
  applied: boolean;
  from: 'cache' | 'outbox';
  /** With recordCompleted: the status recorded, or `not-claimed`. */
  status?: string;
}

/**
 * Writes the staged version into its target (the entity's own table, or synced_records) with a
 * version-guarded write. The data comes from the cache when it still holds this message's copy, and from
 * the outbox otherwise (evicted, flushed, overtaken by a newer version, or Redis unreachable); a soft delete
 * reads the outbox for the delete's time.
 */
export function persistToTarget(deps: ActivityDeps) {
  const { outbox, targets, cache } = deps;
  const recordCompletion = completion(deps);
  return async function persistToTarget(input: PersistInput): Promise<PersistResult> {
    const { messageId, entity, key, version, op } = input;
    let dataText: string | null;
    let deletedAt = new Date();
    let from: 'cache' | 'outbox' = 'cache';
    const copy = op === 'delete' && targets.softDeletes(entity) ? null : await cache.read(entity, key).catch((err: Error) => {
      log.warn('cache unreachable; reading the outbox copy', { messageId, error: err.message });
      return null;
    });
    if (copy && copy.version === version && copy.messageId === messageId) {
      dataText = op === 'delete' ? null : copy.data;
    } else {
      from = 'outbox';
      const message = await readMessageWithText(outbox, messageId);
      if (!message) throw ApplicationFailure.nonRetryable(`message ${messageId} is no longer in the outbox`, FailureType.invalidMessage);
      dataText = op === 'delete' ? null : message.dataText;
      deletedAt = message.createdAt;
    }
    let applied: boolean;
    try {
      applied = await targets.write({ entity, key, version, messageId, op, dataText, deletedAt, overwrite: input.overwrite === true });
    } catch (err) {
      if (err instanceof TargetRejected) {
        throw ApplicationFailure.create({ type: FailureType.targetRejected, message: `the target refused the record: ${err.message}`, nonRetryable: true });
      }
      throw err;
    }
    if (!input.recordCompleted) return { applied, from };
    return { applied, from, status: await recordCompletion(input) };
  };
}
