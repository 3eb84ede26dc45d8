/** What the stores run their SQL on: a pool, or a client (typically inside a caller's transaction). */
import type pg from 'pg';

export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

/**
 * Whether `db` is a pool rather than a client, told by its shape (pg documents `totalCount` on pools
 * only) rather than by `instanceof pg.Pool`: a producer's project may hold a pg of its own (another
 * version installed beside ours, or pg.native), whose Pool is another class.
 */
export function isPool(db: object): db is pg.Pool {
  return typeof (db as { totalCount?: unknown }).totalCount === 'number' && typeof (db as { connect?: unknown }).connect === 'function';
}
