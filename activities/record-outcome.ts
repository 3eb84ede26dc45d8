import { redriveDelayMs } from '../dispatcher/redrive';
import { FailureKind, recordCompleted, recordFailure, type MessageState, type Transition } from '../stores/outbox/state-machine';
import { executionOf, type ActivityDeps, type Claim } from './claim';

export type OutcomeInput = (Claim & { outcome: 'completed' }) | (Claim & { outcome: 'failed'; error: string; permanent: boolean });

/**
 * Records the execution's outcome in the outbox (guarded by the claim). The streams are not written here:
 * the dispatcher's publisher appends every transition from the outbox's record of them (dispatcher/publish.ts),
 * so an outcome, once recorded, reaches its stream whatever Redis does, and recording it never waits on
 * Redis. A retry after a lost reply finds the outcome already recorded by this same execution.
 */
export function recordOutcome(deps: ActivityDeps) {
  const { outbox, settings } = deps;
  const recordCompletion = completion(deps);
  return async function recordOutcome(input: OutcomeInput): Promise<{ status: string }> {
    if (input.outcome === 'completed') return { status: await recordCompletion(input) };
    const execution = executionOf(input);
    const result = await recordFailure(
      outbox,
      { id: input.messageId, execution },
      {
        error: input.error,
        kind: input.permanent ? FailureKind.permanent : FailureKind.transient,
        retryInMs: redriveDelayMs(execution, { baseMs: settings.redriveBaseMs, maxMs: settings.redriveMaxMs }),
        maxExecutions: settings.maxExecutions,
      },
    );
    const failed = recordedBy(result, execution, ['failed', 'dead']);
    if (!failed) return { status: 'not-claimed' };
    if (result.moved) deps.onOutcome?.(failed);
    return { status: failed.status };
  };
}

/** processing → completed for the execution holding the claim. */
export function completion(deps: ActivityDeps) {
  return async (claim: Claim): Promise<string> => {
    const execution = executionOf(claim);
    const result = await recordCompleted(deps.outbox, { id: claim.messageId, execution });
    const done = recordedBy(result, execution, ['completed']);
    if (!done) return 'not-claimed';
    if (result.moved) deps.onOutcome?.(done);
    return done.status;
  };
}

/**
 * The message, if this transition moved it, or if this same execution had already moved it to one of
 * `statuses` (an earlier try of this activity whose reply was lost); null when another execution or part
 * holds it now.
 */
function recordedBy(result: Transition, execution: number, statuses: string[]): MessageState | null {
  if (result.moved) return result.message;
  const current = result.current;
  return current && current.executions === execution && statuses.includes(current.status) ? current : null;
}
