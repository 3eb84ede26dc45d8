/**
 * The producer API. `enqueue(db, message)` stores a message in the outbox; pass a client inside your own
 * transaction and the message commits or rolls back with your business write.
 */
import { createHash } from 'node:crypto';
import stringify from 'safe-stable-stringify';
import { isPool, type Queryable } from '../postgres/queryable';
import { inTransaction } from '../postgres/transaction';
import { InvalidMessageError, MessageInput, ValidMessage, ValidateOptions, validateBatch, validateMessage } from './validate';
import { messageJsonText } from './message-json';

/**
 * The producer's database handle: a pg Pool, PoolClient or Client (typically inside the producer's
 * transaction), from whichever pg 8 the producer's project installed. Declared by the one method they all
 * have, so that the library's types need neither pg's own nor @types/pg; a pool is told by its shape.
 */
export interface ProducerDb {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** An idempotency key was used before, by the same source, with a different body. */
export class IdempotencyConflictError extends Error {
  override name = 'IdempotencyConflictError';
  constructor(
    readonly idempotencyKey: string,
    readonly existingId: number,
  ) {
    super(`idempotencyKey: "${idempotencyKey}" was already used for message ${existingId} with a different body`);
  }
}

export type EnqueueOptions = ValidateOptions;

/** Validates and stores one message; returns its id (the first id when the idempotency key repeats). */
export async function enqueue(db: ProducerDb, message: MessageInput, options: EnqueueOptions = {}): Promise<number> {
  const [id] = await insertMessages(db, [validateMessage(message, options)]);
  return id!;
}

/** Validates and stores a batch, all or none; returns the ids in the order given. */
export async function enqueueBatch(db: ProducerDb, messages: readonly MessageInput[], options: EnqueueOptions = {}): Promise<number[]> {
  return insertMessages(db, validateBatch(messages, options));
}

/** Stores messages that already passed validation (all or none). */
export async function insertMessages(producerDb: ProducerDb, messages: readonly ValidMessage[]): Promise<number[]> {
  if (messages.length === 0) return [];
  // pg's own types describe every pg handle, whichever copy of pg made it; only query, connect and release are called.
  const db = producerDb as Queryable;
  const usesKeys = messages.some((m) => m.idempotencyKey !== null);
  // One INSERT is atomic by itself; a conflict found after it must undo the rows it stored.
  if (!usesKeys || messages.length === 1) return insertAndCheck(db, messages);
  return atomically(db, (q) => insertAndCheck(q, messages));
}

async function insertAndCheck(db: Queryable, messages: readonly ValidMessage[]): Promise<number[]> {
  const hashes = messages.map((m) => (m.idempotencyKey === null ? null : bodyHash(m)));
  const { rows } = await db.query<{ id: string; inserted: boolean }>(INSERT_SQL, [
    messages.map((m) => m.source),
    messages.map((m) => m.entity),
    messages.map((m) => m.key),
    messages.map((m) => m.op),
    messages.map((m) => m.version),
    messages.map((m) => (m.data === null ? null : messageJsonText(m.data))),
    messages.map((m) => m.idempotencyKey),
    hashes,
  ]);
  const ids = rows.map((r) => Number(r.id));
  const repeats = rows.flatMap((r, i) => (r.inserted ? [] : [i]));
  if (repeats.length === 0) return ids;

  // Rows skipped by ON CONFLICT: the key was used before. Same body: answer with the first id.
  const existing = await db.query<{ id: string; source: string; idempotency_key: string; idempotency_hash: string | null }>(
    `SELECT id, coalesce(source, '') AS source, idempotency_key, idempotency_hash
       FROM outbox_messages
      WHERE idempotency_key IS NOT NULL
        AND (coalesce(source, ''), idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [repeats.map((i) => messages[i]!.source ?? ''), repeats.map((i) => messages[i]!.idempotencyKey)],
  );
  const byKey = new Map(existing.rows.map((r) => [`${r.source}\u0000${r.idempotency_key}`, r]));
  for (const i of repeats) {
    const m = messages[i]!;
    const first = byKey.get(`${m.source ?? ''}\u0000${m.idempotencyKey}`);
    if (!first) throw new Error(`message with idempotency key "${m.idempotencyKey}" was neither stored nor found`);
    if (first.idempotency_hash !== hashes[i]) throw new IdempotencyConflictError(m.idempotencyKey!, Number(first.id));
    ids[i] = Number(first.id);
  }
  return ids;
}

// Ids are drawn in input order before the insert, so the answer lines up with the input even when some
// rows are skipped as repeats of an idempotency key.
const INSERT_SQL = `
  WITH input AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('outbox_messages', 'id')) AS id, t.*
      FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::jsonb[], $7::text[], $8::text[])
           WITH ORDINALITY AS t(source, entity, entity_key, op, version, data, idempotency_key, idempotency_hash, ord)
  ), inserted AS (
    INSERT INTO outbox_messages (id, source, entity, entity_key, op, version, data, idempotency_key, idempotency_hash)
    SELECT id, source, entity, entity_key, op, version, data, idempotency_key, idempotency_hash
      FROM input ORDER BY ord
    ON CONFLICT ((coalesce(source, '')), idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id
  )
  SELECT input.id, inserted.id IS NOT NULL AS inserted
    FROM input LEFT JOIN inserted USING (id)
   ORDER BY input.ord`;

/** The body an idempotency key stands for; key order inside data does not matter. */
function bodyHash(m: ValidMessage): string {
  const body = stringify({ entity: m.entity, key: m.key, op: m.op, version: m.version, data: m.data });
  return createHash('sha256').update(body!).digest('hex');
}

/**
 * Runs `work` so that it stores all or nothing: inside the caller's transaction through a savepoint, in a
 * transaction of its own on a client that is not in one, or on a pooled client for a pool.
 */
async function atomically<T>(db: Queryable, work: (q: Queryable) => Promise<T>): Promise<T> {
  if (isPool(db)) return inTransaction(db, work);
  try {
    await db.query('SAVEPOINT outbox_sync_enqueue');
  } catch (err) {
    if ((err as { code?: string }).code !== '25P01') throw err; // 25P01: not in a transaction block
    return inTransaction(db, work);
  }
  try {
    const result = await work(db);
    await db.query('RELEASE SAVEPOINT outbox_sync_enqueue');
    return result;
  } catch (err) {
    await db.query('ROLLBACK TO SAVEPOINT outbox_sync_enqueue');
    throw err;
  }
}

export { InvalidMessageError };
