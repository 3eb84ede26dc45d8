/**
 * The first workflow task of an execution started before LOCAL_STEPS_PATCH: stageToCache scheduled on the
 * task queue, and no patch marker. A worker running this bundle starts an execution the way the earlier
 * code did (compare the first events of test/histories/completed-upsert-1.json); a worker running the
 * current bundle then takes it over, as during an upgrade, and must finish it on the pre-patch path. The
 * steps after the first are the current workflow's to take, so this file goes no further.
 */
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { SyncActivities } from '../../activities/activities';
import type { SyncMessageInput } from '../../workflows/sync-message';
import type { Claim } from '../../activities/activities';

const { stageToCache } = proxyActivities<SyncActivities>({ startToCloseTimeout: '10 seconds' });

export async function syncMessage(input: SyncMessageInput): Promise<never> {
  // The earlier code named the execution `attempt`, in its input and its activities' input.
  await stageToCache({ messageId: input.messageId, attempt: input.attempt } as Claim);
  throw ApplicationFailure.nonRetryable('the pre-patch start is meant to be taken over after its first workflow task');
}
