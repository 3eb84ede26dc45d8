/**
 * The relay without Temporal that the benchmark compares the pipeline with: the same database and Redis
 * work per message as the dispatcher and the activities (claim in batches, read the message, stage it in
 * Redis, read the staged copy, upsert into the target, record the outcome, publish the notification), with
 * the same stores and the same concurrency as the worker's slots, but no workflow around it.
 */
import type { Stores } from '../stores/stores';
import { checkData, type Op } from '../stores/outbox/validate';
import { readMessage } from '../stores/outbox/messages';
import { claimPending, recordCompleted, type ClaimedMessage } from '../stores/outbox/state-machine';

export interface RelaySettings {
  concurrency: number;
  claimBatchSize: number;
  leaseMs: number;
  maxDataBytes: number;
}

/** Relays pending messages until none is left; returns how many it completed. */
export async function relayPending(stores: Pick<Stores, 'outbox' | 'targets' | 'cache'>, settings: RelaySettings): Promise<number> {
  const queue: ClaimedMessage[] = [];
  let claiming: Promise<void> | null = null;
  let exhausted = false;
  let completed = 0;

  async function next(): Promise<ClaimedMessage | undefined> {
    while (queue.length === 0 && !exhausted) {
      claiming ??= claimPending(stores.outbox, { limit: settings.claimBatchSize, leaseMs: settings.leaseMs, workflowIdPrefix: 'relay-' }).then((claimed) => {
        if (claimed.length === 0) exhausted = true;
        queue.push(...claimed);
        claiming = null;
      });
      await claiming;
    }
    return queue.shift();
  }

  async function relayOne(claim: ClaimedMessage): Promise<void> {
    const message = await readMessage(stores.outbox, claim.id);
    if (!message || message.status !== 'processing' || message.executions !== claim.execution) return;
    const op = message.op as Op;
    checkData(op, message.data, settings.maxDataBytes);
    const data = op === 'delete' ? '' : JSON.stringify(message.data);
    await stores.cache.stage(message.entity, message.key, { version: message.version, op, data, messageId: message.id });
    const copy = await stores.cache.read(message.entity, message.key);
    const fromCache = copy && copy.version === message.version && copy.messageId === message.id;
    const dataText = op === 'delete' ? null : fromCache ? copy.data : JSON.stringify(message.data);
    // The same write as the persist step's, into whichever target the entity maps to.
    await stores.targets.write({ entity: message.entity, key: message.key, version: message.version, messageId: message.id, op, dataText, deletedAt: message.createdAt });
    const result = await recordCompleted(stores.outbox, { id: message.id, execution: claim.execution });
    if (!result.moved) return;
    const done = result.message;
    await stores.cache.publish('succeeded', { messageId: done.id, entity: done.entity, key: done.key, version: done.version, status: done.status, attempt: done.executions });
    completed++;
  }

  await Promise.all(
    Array.from({ length: settings.concurrency }, async () => {
      for (let claim = await next(); claim; claim = await next()) await relayOne(claim);
    }),
  );
  return completed;
}
