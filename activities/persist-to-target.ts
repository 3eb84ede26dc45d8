import { ApplicationFailure, log } from '@temporalio/activity';
import { readMessage } from '../stores/outbox/messages';
import type { Op } from '../stores/outbox/validate';
import { isPermanentDatabaseError } from '../stores/postgres/errors';
import { upsertRecord } from '../stores/target/synced-records';
import { FailureType } from '../workflows/failures';
import type { ActivityDeps, Claim } from './claim';
import { completion } from './record-outcome';

export interface PersistInput extends Claim {
  entity: string;
  key: string;
  version: string;
  op: Op;
  /** Also record the completed outcome and notify, as recordOutcome does: one step (and round trip) fewer. */
  recordCompleted?: boolean;
}

export interface PersistResult {
  applied: boolean;
  from: 'cache' | 'outbox';
  /** With recordCompleted: the status recorded, or `not-claimed`. */
  status?: string;
}

/**
 * Writes the staged version into the target with a version-guarded upsert. The data comes from the cache
 * when it still holds this message's copy, and from the outbox otherwise (evicted, flushed, overtaken by a
 * newer version, or Redis unreachable).
 */
export function persistToTarget(deps: ActivityDeps) {
  const { outbox, target, cache } = deps;
  const recordCompletion = completion(deps);
  return async function persistToTarget(input: PersistInput): Promise<PersistResult> {
    const { messageId, entity, key, version, op } = input;
    let data: unknown;
    let from: 'cache' | 'outbox' = 'cache';
    const copy = await cache.read(entity, key).catch((err: Error) => {
      log.warn('cache unreachable; reading the outbox copy', { messageId, error: err.message });
      return null;
    });
    if (copy && copy.version === version && copy.messageId === messageId) {
      data = op === 'delete' ? null : JSON.parse(copy.data);
    } else {
      from = 'outbox';
      const message = await readMessage(outbox, messageId);
      if (!message) throw ApplicationFailure.nonRetryable(`message ${messageId} is no longer in the outbox`, FailureType.invalidMessage);
      data = op === 'delete' ? null : message.data;
    }
    let applied: boolean;
    try {
      applied = await upsertRecord(target, { entity, key, version, data, deleted: op === 'delete', messageId });
    } catch (err) {
      if (isPermanentDatabaseError(err)) {
        throw ApplicationFailure.create({
          type: FailureType.targetRejected,
          message: `the target refused the record: ${(err as Error).message}`,
          nonRetryable: true,
          cause: err as Error,
        });
      }
      throw err;
    }
    if (!input.recordCompleted) return { applied, from };
    return { applied, from, status: await recordCompletion(input) };
  };
}
