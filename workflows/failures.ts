/**
 * Failure types that no retry can fix, shared by the activities (which throw them as non-retryable
 * ApplicationFailures) and the workflow (which records them as permanent). Pure: the workflow sandbox
 * imports it.
 */
export const FailureType = Object.freeze({
  /** The message itself is wrong (its op, its data): found after it was accepted, e.g. a plain-SQL insert. */
  invalidMessage: 'InvalidMessage',
  /** The target database refused the record for good (bad data, a broken constraint). */
  targetRejected: 'TargetRejected',
} as const);

export type FailureType = (typeof FailureType)[keyof typeof FailureType];

export const PERMANENT_FAILURE_TYPES: readonly string[] = Object.values(FailureType);
