/**
 * PostgreSQL errors, classified once. SQLSTATE codes are five characters; the first two name the class.
 * A permanent error is one that the same statement with the same input will raise again: bad data or a
 * broken constraint. Everything else (lost connections, shutdowns, deadlocks, lock timeouts, missing
 * tables before a migration) may pass.
 */
export const PgErrorClass = Object.freeze({
  dataException: '22',
  integrityConstraintViolation: '23',
} as const);

export const PgErrorCode = Object.freeze({
  uniqueViolation: '23505',
  duplicateDatabase: '42P04',
  undefinedTable: '42P01',
  invalidCatalogName: '3D000',
} as const);

const PERMANENT_CLASSES: readonly string[] = [PgErrorClass.dataException, PgErrorClass.integrityConstraintViolation];

/** The SQLSTATE of a driver error, if it carries one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function isPermanentDatabaseError(err: unknown): boolean {
  const code = sqlState(err);
  return code !== undefined && PERMANENT_CLASSES.includes(code.slice(0, 2));
}
