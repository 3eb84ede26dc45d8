/** A `syncMessage` whose steps run in another order: the replay test expects it to be caught. */
import { proxyActivities } from '@temporalio/workflow';
import type { SyncActivities } from '../../activities/activities';
import type { SyncMessageInput } from '../../workflows/sync-message';

const { persistToTarget, recordOutcome } = proxyActivities<SyncActivities>({ startToCloseTimeout: '10 seconds' });

export async function syncMessage(input: SyncMessageInput): Promise<unknown> {
  await persistToTarget({ messageId: input.messageId, execution: input.execution ?? input.attempt!, entity: '', key: '', version: '0', op: 'upsert' });
  return recordOutcome({ messageId: input.messageId, execution: input.execution ?? input.attempt!, outcome: 'completed' });
}
