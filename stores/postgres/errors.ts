/**
 * PostgreSQL errors, classified once. A permanent error is one that the same statement with the same
 * input will raise again: bad data (class 22) or a broken constraint (class 23). Everything else (lost
 * connections, shutdowns, deadlocks, lock timeouts, missing tables before a migration) may pass.
 */
export function isPermanentDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23)[0-9A-Z]{3}$/.test(code);
}
