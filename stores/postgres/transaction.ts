/** One transaction of its own around some work: migrations, the outbox's bulk retries, capped claims and enqueues share it. */
import type pg from 'pg';
import { isPool, type Queryable } from './queryable';

/**
 * Runs `work` between BEGIN and COMMIT (ROLLBACK when it throws): on a connection taken from the pool and
 * given back after, or on the client given, which must not be in a transaction already.
 */
export async function inTransaction<T>(db: Queryable, work: (client: pg.PoolClient | pg.Client) => Promise<T>): Promise<T> {
  const client = isPool(db) ? await db.connect() : db;
  try {
    await client.query('BEGIN');
    try {
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    if (client !== db) (client as pg.PoolClient).release();
  }
}
