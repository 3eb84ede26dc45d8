/**
 * The benchmark's correctness check: a run whose messages did not all complete, or whose target does not
 * hold the newest version of every key, is wrong, and its figures are not reported.
 */
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import type { TargetRecord } from '../stores/target/synced-records';

export interface SentMessage {
  id: number;
  entity: string;
  key: string;
  op: string;
  version: string;
  data: unknown;
  status: string;
}

/** A row the target holds at the end of the run. */
export type HeldRecord = TargetRecord;

/** What is wrong with a run (at most `limit` lines, then a count); empty when it is right. */
export function findProblems(sent: readonly SentMessage[], held: readonly HeldRecord[], limit = 10): string[] {
  const problems: string[] = [];
  const notCompleted = sent.filter((m) => m.status !== 'completed');
  if (notCompleted.length > 0) {
    const sample = notCompleted.slice(0, 5).map((m) => `${m.id}:${m.status}`).join(', ');
    problems.push(`${notCompleted.length} of ${sent.length} messages did not complete (${sample})`);
  }
  // The newest message of each key is what the target must hold.
  const newest = new Map<string, SentMessage>();
  for (const m of sent) {
    const id = recordId(m.entity, m.key);
    const current = newest.get(id);
    if (!current || BigInt(m.version) > BigInt(current.version)) newest.set(id, m);
  }
  const heldById = new Map(held.map((r) => [recordId(r.entity, r.key), r]));
  for (const [id, m] of newest) {
    const record = heldById.get(id);
    heldById.delete(id);
    let wrong: string | null = null;
    if (!record) wrong = 'missing from the target';
    else if (record.version !== m.version) wrong = `holds version ${record.version}, expected ${m.version}`;
    else if (record.messageId !== m.id) wrong = `holds message ${record.messageId}, expected ${m.id}`;
    else if (record.deleted !== (m.op === 'delete')) wrong = record.deleted ? 'deleted, expected present' : 'present, expected deleted';
    else if (m.op !== 'delete' && !isDeepStrictEqual(record.data, m.data)) wrong = 'holds other data than its newest message';
    if (wrong) problems.push(`${id}: ${wrong}`);
  }
  for (const id of heldById.keys()) problems.push(`${id}: in the target, but no message was sent for it`);
  if (problems.length > limit) return [...problems.slice(0, limit), `… and ${problems.length - limit} more`];
  return problems;
}

/** Reads the messages of the given entities and their target rows, and checks them. */
export async function checkRun(outbox: pg.Pool, target: pg.Pool | ((entities: string[]) => Promise<HeldRecord[]>), entities: string[]): Promise<string[]> {
  const sent = await outbox.query(
    'SELECT id, entity, entity_key, op, version, data, status FROM outbox_messages WHERE entity = ANY($1::text[])',
    [entities],
  );
  const held = typeof target === 'function' ? await target(entities) : await readSyncedRecords(target, entities);
  return findProblems(
    sent.rows.map((r) => ({ id: Number(r.id), entity: r.entity, key: r.entity_key, op: r.op, version: String(r.version), data: r.data, status: r.status })),
    held,
  );
}

async function readSyncedRecords(target: pg.Pool, entities: string[]): Promise<HeldRecord[]> {
  const { rows } = await target.query('SELECT entity, entity_key, version, data, deleted, message_id FROM synced_records WHERE entity = ANY($1::text[])', [entities]);
  return rows.map((r) => ({ entity: r.entity, key: r.entity_key, version: String(r.version), data: r.data, deleted: r.deleted, messageId: Number(r.message_id) }));
}

function recordId(entity: string, key: string): string {
  return `${entity}/${key}`;
}
