-- Each finished `verify` run, so that the outbox page and the metrics can show the last verification's
-- result and when it ran (stores/outbox/verify-runs.ts). Only the newest few are kept: each new run deletes
-- the older ones, but never the newest run over every entity, which is the one the page and the metrics show.
CREATE TABLE outbox_verify_runs (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  -- The --entity the run was narrowed to; null when it checked every entity.
  entity      text,
  checked     bigint NOT NULL CHECK (checked >= 0),
  missing     bigint NOT NULL CHECK (missing >= 0),
  stale       bigint NOT NULL CHECK (stale >= 0),
  different   bigint NOT NULL CHECK (different >= 0),
  -- Messages sent through the pipeline again by --repair; null without it.
  repaired    bigint CHECK (repaired >= 0),
  passed      boolean GENERATED ALWAYS AS (missing = 0 AND stale = 0 AND different = 0) STORED
);

-- The newest run over every entity, found without a scan.
CREATE INDEX outbox_verify_runs_whole ON outbox_verify_runs (id DESC) WHERE entity IS NULL;
