import { userInfo } from 'node:os';
import type pg from 'pg';

/**
 * Client settings for a database URL. A URL without a user name means the operating-system user, as psql
 * does, even where the environment has no USER variable (as under some CI runners and init systems).
 */
export function pgSettings(url: string, extra: pg.PoolConfig = {}): pg.PoolConfig {
  const parsed = new URL(url);
  if (!parsed.username && !process.env.PGUSER) parsed.username = encodeURIComponent(process.env.USER || userInfo().username);
  return { connectionString: parsed.toString(), ...extra };
}
