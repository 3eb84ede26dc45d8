/**
 * `verify`: is the target complete? For every key with a completed message, the target's row is held
 * against the newest completed message of that key (the highest version; the target keeps the highest):
 * `missing` (no row, or no tombstone for a delete), `stale` (an older version), `different` (the same
 * version with other content). A row with a newer version than any completed message is not a problem:
 * that message is still under way. Keys whose messages were all pruned are not seen at all.
 *
 * The outbox is read in batches of keys in key order (a keyset, never an offset), each batch compared
 * in one query on synced_records and one per mapped entity (stores/target/*-engine.ts), so memory stays
 * bounded however many keys there are, and the round trips grow with the batches, not the keys.
 */
import type pg from 'pg';
import type { TargetProblem } from './target/engine';
import type { CompletedVersion, Targets } from './target/targets';

export interface KeyProblem {
  entity: string;
  key: string;
  problem: TargetProblem;
  /** The newest completed message of the key, which the row should hold. */
  messageId: number;
}

export interface VerifyReport {
  checked: number;
  missing: number;
  stale: number;
  different: number;
  /** The first problems found, at most `keepKeys` of them. */
  keys: KeyProblem[];
}

export interface VerifyOptions {
  entity?: string;
  /** Keys per batch. */
  batchSize?: number;
  /** How many problem keys the report lists (the counts cover all). */
  keepKeys?: number;
  /** Called with every problem found, also past `keepKeys` (for `--repair`). */
  onProblem?: (problem: KeyProblem) => void;
  /** Called after each batch with the keys checked so far and the total (counted first, only when given). */
  onProgress?: (checked: number, total: number) => void;
}

export async function verifyTargets(outbox: pg.Pool, targets: Targets, options: VerifyOptions = {}): Promise<VerifyReport> {
  const batchSize = options.batchSize ?? 1_000;
  const keepKeys = options.keepKeys ?? 100;
  const entity = options.entity ?? null;
  const report: VerifyReport = { checked: 0, missing: 0, stale: 0, different: 0, keys: [] };
  const total = options.onProgress ? await countKeys(outbox, entity) : 0;
  let after: [string, string] = ['', ''];
  for (;;) {
    const newest = await newestCompleted(outbox, entity, after, batchSize);
    if (newest.length === 0) break;
    const problems = await targets.compare(newest);
    for (const [i, message] of newest.entries()) {
      const problem = problems[i] === 'different' ? await differentFromEveryTie(outbox, targets, message) : problems[i];
      if (!problem) continue;
      report[problem]++;
      const found = { entity: message.entity, key: message.key, problem, messageId: message.messageId };
      if (report.keys.length < keepKeys) report.keys.push(found);
      options.onProblem?.(found);
    }
    report.checked += newest.length;
    options.onProgress?.(report.checked, Math.max(total, report.checked));
    const last = newest[newest.length - 1]!;
    after = [last.entity, last.key];
  }
  return report;
}

type CompletedRow = { id: string; entity: string; entity_key: string; op: 'upsert' | 'delete'; version: string; data: string | null; created_at: Date };

const toCompleted = (row: CompletedRow): CompletedVersion => ({
  messageId: Number(row.id),
  entity: row.entity,
  key: row.entity_key,
  op: row.op,
  version: row.version,
  dataText: row.data,
  createdAt: row.created_at,
});

/**
 * The newest completed message of each key after `after`, in key order. The version is ordered as the
 * bigint column it is: a bare `version` in ORDER BY would name the text the query returns, and put 9
 * above 10.
 */
async function newestCompleted(outbox: pg.Pool, entity: string | null, after: [string, string], limit: number): Promise<CompletedVersion[]> {
  const { rows } = await outbox.query<CompletedRow>(
    `SELECT DISTINCT ON (entity, entity_key) id, entity, entity_key, op, version::text AS version, data::text AS data, created_at
       FROM outbox_messages
      WHERE status = 'completed' AND (entity, entity_key) > ($1, $2) AND ($3::text IS NULL OR entity = $3)
      ORDER BY entity, entity_key, outbox_messages.version DESC, id DESC
      LIMIT $4`,
    [after[0], after[1], entity, limit],
  );
  return rows.map(toCompleted);
}

/**
 * Two completed messages of a key may share its highest version; the target keeps whichever came
 * first. The row is different only if it holds none of them.
 */
async function differentFromEveryTie(outbox: pg.Pool, targets: Targets, newest: CompletedVersion): Promise<TargetProblem | null> {
  const { rows } = await outbox.query<CompletedRow>(
    `SELECT id, entity, entity_key, op, version::text AS version, data::text AS data, created_at FROM outbox_messages
      WHERE status = 'completed' AND entity = $1 AND entity_key = $2 AND version = $3 AND id <> $4`,
    [newest.entity, newest.key, newest.version, newest.messageId],
  );
  for (const tie of rows.map(toCompleted)) if ((await targets.compare([tie]))[0] === null) return null;
  return 'different';
}

async function countKeys(outbox: pg.Pool, entity: string | null): Promise<number> {
  const { rows } = await outbox.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT DISTINCT entity, entity_key FROM outbox_messages WHERE status = 'completed' AND ($1::text IS NULL OR entity = $1)) AS keys`,
    [entity],
  );
  return Number(rows[0]!.n);
}
