/** What every activity is built from, and the claim each one works for. */
import type pg from 'pg';
import type { Cache } from '../stores/cache';
import type { MessageState } from '../stores/outbox/state-machine';
import type { Targets } from '../stores/target/targets';

export interface ActivitySettings {
  /** Executions of one message before it is declared dead. */
  maxExecutions: number;
  redriveBaseMs: number;
  redriveMaxMs: number;
  maxDataBytes: number;
}

export interface ActivityDeps {
  outbox: pg.Pool;
  targets: Targets;
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
