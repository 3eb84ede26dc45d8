/**
 * The activities of `syncMessage`, one file each, built by this factory from the stores they need; only
 * worker/ wires real clients in. Every step checks that its execution still holds the message's claim,
 * and every effect is version-guarded, so a repeated or late activity changes nothing.
 */
import type { ActivityDeps } from './claim';
import { persistToTarget } from './persist-to-target';
import { recordOutcome } from './record-outcome';
import { stageToCache } from './stage-to-cache';

export function createActivities(deps: ActivityDeps) {
  return {
    stageToCache: stageToCache(deps),
    persistToTarget: persistToTarget(deps),
    recordOutcome: recordOutcome(deps),
  };
}

export type SyncActivities = ReturnType<typeof createActivities>;
export type { ActivityDeps, ActivitySettings, Claim } from './claim';
export type { StageOutcome } from './stage-to-cache';
export type { PersistInput, PersistResult } from './persist-to-target';
export type { OutcomeInput } from './record-outcome';
