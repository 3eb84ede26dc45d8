/**
 * The record of finished `verify` runs (outbox_verify_runs, migration 008): when each ran, what it
 * checked, what it found and what it repaired. The outbox page and the metrics show the newest run over
 * every entity: a run narrowed with --entity is kept beside it but does not replace it, since it says
 * nothing about the other entities.
 */
import type pg from 'pg';
import { inTransaction } from '../postgres/transaction';
import type { Queryable } from '../postgres/queryable';

export interface VerifyRun {
  startedAt: Date;
  finishedAt: Date;
  /** The --entity it was narrowed to; null when it checked every entity. */
  entity: string | null;
  checked: number;
  missing: number;
  stale: number;
  different: number;
  /** Messages --repair sent through the pipeline again; null for a run without --repair. */
  repaired: number | null;
  /** No key missing, stale or different. */
  passed: boolean;
}

/** Runs kept; each new run deletes the older ones, except the newest run over every entity. */
export const KEPT_VERIFY_RUNS = 20;

type RunRow = {
  started_at: Date;
  finished_at: Date;
  entity: string | null;
  checked: string;
  missing: string;
  stale: string;
  different: string;
  repaired: string | null;
  passed: boolean;
};

const COLUMNS = 'started_at, finished_at, entity, checked, missing, stale, different, repaired, passed';

const toRun = (row: RunRow): VerifyRun => ({
  startedAt: row.started_at,
  finishedAt: row.finished_at,
  entity: row.entity,
  checked: Number(row.checked),
  missing: Number(row.missing),
  stale: Number(row.stale),
  different: Number(row.different),
  repaired: row.repaired === null ? null : Number(row.repaired),
  passed: row.passed,
});

/** Records a finished run (it ends now) and deletes the runs past the newest KEPT_VERIFY_RUNS. */
export async function recordVerifyRun(db: pg.Pool, run: Omit<VerifyRun, 'finishedAt' | 'passed'>): Promise<VerifyRun> {
  return inTransaction(db, async (client) => {
    const { rows } = await client.query<RunRow>(
      `INSERT INTO outbox_verify_runs (started_at, entity, checked, missing, stale, different, repaired)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [run.startedAt, run.entity, run.checked, run.missing, run.stale, run.different, run.repaired],
    );
    await client.query(
      `DELETE FROM outbox_verify_runs
        WHERE id NOT IN (SELECT id FROM outbox_verify_runs ORDER BY id DESC LIMIT $1)
          AND id <> COALESCE((SELECT max(id) FROM outbox_verify_runs WHERE entity IS NULL), 0)`,
      [KEPT_VERIFY_RUNS],
    );
    return toRun(rows[0]!);
  });
}

/** The newest finished run over every entity; null when verify has never run (or only narrowed runs). */
export async function readLastVerifyRun(db: Queryable): Promise<VerifyRun | null> {
  const { rows } = await db.query<RunRow>(`SELECT ${COLUMNS} FROM outbox_verify_runs WHERE entity IS NULL ORDER BY id DESC LIMIT 1`);
  return rows[0] ? toRun(rows[0]) : null;
}

