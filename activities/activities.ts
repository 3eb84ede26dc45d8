/**
 * The activities of `syncMessage`, one file each, built by this factory from the stores they need; only
 * worker/ wires real clients in. Every step checks that its execution still holds the message's claim,
 * and every effect is version-guarded, so a repeated or late activity changes nothing.
 */
import type pg from 'pg';
import type { Cache } from '../stores/cache';
import type { MessageState } from '../stores/outbox/state-machine';
import { persistToTarget } from './persist-to-target';
import { recordOutcome } from './record-outcome';
import { stageToCache } from './stage-to-cache';

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
  onOutcome?: (message: MessageState) => void;
}

/** Which execution of which message a step works for. */
export interface Claim {
  messageId: number;
  execution: number;
  /** The same, as workflows started before `execution` was named so pass it. */
  attempt?: number;
}

/** The execution a claim names, whichever name the workflow that sent it used. */
export function executionOf(claim: Claim): number {
  return claim.execution ?? claim.attempt!;
}

export function createActivities(deps: ActivityDeps) {
  return {
    stageToCache: stageToCache(deps),
    persistToTarget: persistToTarget(deps),
    recordOutcome: recordOutcome(deps),
  };
}

export type SyncActivities = ReturnType<typeof createActivities>;
export type { StageOutcome } from './stage-to-cache';
export type { PersistInput, PersistResult } from './persist-to-target';
export type { OutcomeInput } from './record-outcome';
