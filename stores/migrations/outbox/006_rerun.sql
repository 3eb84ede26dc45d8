-- Messages that keep failing transiently must not take every in-flight slot from the others: the
-- redriver's claims (re-runs of failed executions) together hold at most a share of the cap (see
-- claimFailedDue in stores/outbox/state-machine.ts). The flag says which kind of claim holds a message in
-- processing: set by the redriver's claim, cleared by the dispatcher's, left as it is by the reconciler's.
-- (A constant default: adding the column rewrites nothing.)
ALTER TABLE outbox_messages ADD COLUMN rerun boolean NOT NULL DEFAULT false;
