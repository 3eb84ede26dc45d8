/**
 * The activities of `syncMessage`, built by a factory from the stores they need; only worker/ wires real
 * clients in. Every step checks that its execution still holds the message's claim, and every effect is
 * version-guarded, so a repeated or late activity changes nothing.
 */
import { ApplicationFailure, log } from '@temporalio/activity';
import type pg from 'pg';
import type { Cache, StageResult } from '../stores/cache';
import { isPermanentDatabaseError } from '../stores/postgres/errors';
import { InvalidMessageError, checkData, type Op } from '../stores/outbox/validate';
import { markCompleted, markDead, markFailed, readMessage, type TransitionedMessage } from '../stores/outbox/messages';
import { upsertRecord } from '../stores/target/synced-records';

export interface ActivitySettings {
  /** Executions of one message before it is declared dead. */
  maxExecutions: number;
  redriveBaseMs: number;
  redriveMaxMs: number;
  maxDataBytes: number;
}

export interface ActivityDeps {
  outbox: pg.Pool;
  target: pg.Pool;
  cache: Cache;
  settings: ActivitySettings;
  /** Told of each outcome this worker records (metrics). */
  onOutcome?: (message: TransitionedMessage) => void;
}

export interface Claim {
  messageId: number;
  attempt: number;
}

export type StageOutcome =
  | { state: 'not-claimed' }
  | { state: 'staged'; entity: string; key: string; version: string; op: Op; cache: StageResult };

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

export type OutcomeInput = (Claim & { outcome: 'completed' }) | (Claim & { outcome: 'failed'; error: string; permanent: boolean });

export function createActivities({ outbox, target, cache, settings, onOutcome }: ActivityDeps) {
  return {
    /** Reads the message from the outbox and stages its data in Redis, unless a newer version is there. */
    async stageToCache({ messageId, attempt }: Claim): Promise<StageOutcome> {
      const message = await readMessage(outbox, messageId);
      if (!message || message.status !== 'processing' || message.attempts !== attempt) {
        log.info('message is no longer claimed by this execution; nothing to do', { messageId, attempt, status: message?.status });
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
      const data = op === 'delete' ? '' : JSON.stringify(message.data);
      const result = await cache.stage(message.entity, message.key, { version: message.version, op, data, messageId });
      return { state: 'staged', entity: message.entity, key: message.key, version: message.version, op, cache: result };
    },

    /**
     * Writes the staged version into the target with a version-guarded upsert. The data comes from the
     * cache when it still holds this message's copy, and from the outbox otherwise (evicted, flushed,
     * overtaken by a newer version, or Redis unreachable).
     */
    async persistToTarget({ messageId, attempt, entity, key, version, op, recordCompleted }: PersistInput): Promise<PersistResult> {
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
        if (!message) throw ApplicationFailure.nonRetryable(`message ${messageId} is no longer in the outbox`, 'InvalidMessage');
        data = op === 'delete' ? null : message.data;
      }
      let applied: boolean;
      try {
        applied = await upsertRecord(target, { entity, key, version, data, deleted: op === 'delete', messageId });
      } catch (err) {
        if (isPermanentDatabaseError(err)) {
          throw ApplicationFailure.create({
            type: 'TargetRejected',
            message: `the target refused the record: ${(err as Error).message}`,
            nonRetryable: true,
            cause: err as Error,
          });
        }
        throw err;
      }
      if (!recordCompleted) return { applied, from };
      return { applied, from, status: await recordCompletion(messageId, attempt) };
    },

    /**
     * Records the execution's outcome in the outbox (guarded by the claim), then notifies the success or
     * failure stream. A retry after a lost notification finds the outcome already recorded by this same
     * execution and notifies again: the streams are at-least-once.
     */
    async recordOutcome(input: OutcomeInput): Promise<{ status: string }> {
      const { messageId, attempt } = input;
      if (input.outcome === 'completed') return { status: await recordCompletion(messageId, attempt) };
      const retryInMs = Math.min(settings.redriveBaseMs * 2 ** (attempt - 1), settings.redriveMaxMs);
      const kind = input.permanent ? 'permanent' : 'transient';
      let failed = await markFailed(outbox, messageId, attempt, { error: input.error, kind, retryInMs });
      if (failed && (input.permanent || attempt >= settings.maxExecutions)) {
        // A redriver may declare it dead between the two statements: then report what it holds now.
        failed = (await markDead(outbox, messageId, attempt)) ?? (await alreadyRecorded(messageId, attempt, ['dead'])) ?? failed;
      }
      if (failed) onOutcome?.(failed);
      failed ??= await alreadyRecorded(messageId, attempt, ['failed', 'dead']);
      if (!failed) return { status: 'not-claimed' };
      await notify('failed', failed, input.error);
      return { status: failed.status };
    },
  };

  /** processing → completed for the execution holding the claim, then the success notification. */
  async function recordCompletion(messageId: number, attempt: number): Promise<string> {
    const marked = await markCompleted(outbox, messageId, attempt);
    const done = marked ?? (await alreadyRecorded(messageId, attempt, ['completed']));
    if (!done) return 'not-claimed';
    if (marked) onOutcome?.(marked);
    await notify('succeeded', done);
    return done.status;
  }

  /** The message, if this execution already moved it to one of `statuses` (an earlier try of this activity). */
  async function alreadyRecorded(messageId: number, attempt: number, statuses: string[]): Promise<TransitionedMessage | null> {
    const message = await readMessage(outbox, messageId);
    if (!message || message.attempts !== attempt || !statuses.includes(message.status)) return null;
    const { id, entity, key, version, status, attempts, createdAt } = message;
    return { id, entity, key, version, status, attempts, createdAt };
  }

  async function notify(stream: 'succeeded' | 'failed', message: TransitionedMessage, error?: string): Promise<void> {
    await cache.publish(stream, {
      messageId: message.id,
      entity: message.entity,
      key: message.key,
      version: message.version,
      status: message.status,
      attempt: message.attempts,
      ...(error === undefined ? {} : { error }),
    });
  }
}

function invalid(reason: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(reason, 'InvalidMessage');
}

export type SyncActivities = ReturnType<typeof createActivities>;
