import { ApplicationFailure, log } from '@temporalio/activity';
import type { StageResult } from '../stores/cache';
import { readMessageWithText } from '../stores/outbox/messages';
import { InvalidMessageError, checkData, type Op } from '../stores/outbox/validate';
import { FailureType } from '../workflows/failures';
import { executionOf, type ActivityDeps, type Claim } from './claim';

export type StageOutcome =
  | { state: 'not-claimed' }
  | { state: 'staged'; entity: string; key: string; version: string; op: Op; cache: StageResult; overwrite?: true };

/** Reads the message from the outbox and stages its data in Redis, unless a newer version is there. */
export function stageToCache({ outbox, cache, settings }: ActivityDeps) {
  return async function stageToCache(claim: Claim): Promise<StageOutcome> {
    const { messageId } = claim;
    const execution = executionOf(claim);
    const message = await readMessageWithText(outbox, messageId);
    if (!message || message.status !== 'processing' || message.executions !== execution) {
      log.info('message is no longer claimed by this execution; nothing to do', { messageId, execution, status: message?.status });
      return { state: 'not-claimed' };
    }
    // Rows that producers inserted with plain SQL meet the edge's checks here, and fail alone.
    const op = message.op;
    if (op !== 'upsert' && op !== 'delete') throw invalid(`op: must be "upsert" or "delete" (got ${JSON.stringify(op)})`);
    try {
      checkData(op, message.data, settings.maxDataBytes);
    } catch (err) {
      if (err instanceof InvalidMessageError) throw invalid(err.message);
      throw err;
    }
    const data = op === 'delete' ? '' : (message.dataText ?? 'null');
    const result = await cache.stage(message.entity, message.key, { version: message.version, op, data, messageId });
    return { state: 'staged', entity: message.entity, key: message.key, version: message.version, op, cache: result, ...(message.overwrite ? { overwrite: true as const } : {}) };
  };
}

function invalid(reason: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(reason, FailureType.invalidMessage);
}
