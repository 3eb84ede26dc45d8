/**
 * The mapping file OUTBOX_SYNC_TARGETS names: which of the user's databases and tables each entity goes
 * into. Read and checked with the other settings, before anything connects: a wrong file stops the process
 * with one line naming the entity and what is wrong. Whether the tables really look like this is checked
 * against the live schema later (schema-check.ts).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export type Engine = 'postgres' | 'mysql';

export interface TargetDatabase {
  name: string;
  engine: Engine;
  url: string;
  /** The environment variable the URL came from, when the file names one instead of a URL. */
  env: string | null;
}

export interface ColumnSource {
  column: string;
  /** The dot path into `data`, split: `customer.id` → ['customer', 'id']. */
  path: string[];
}

export interface EntityMapping {
  entity: string;
  database: string;
  /** `table` or `schema.table`, as written in the file. */
  table: string;
  keyColumns: string[];
  /** null: every column of the table but the key and soft-delete columns, by name. */
  columns: ColumnSource[] | null;
  onDelete: { kind: 'delete' } | { kind: 'softDelete'; column: string };
}

export interface TargetsMapping {
  databases: Map<string, TargetDatabase>;
  entities: Map<string, EntityMapping>;
}

/**
 * Identifiers are spliced into SQL (quoted), so only plain ones are taken: a letter or underscore, then
 * letters, digits or underscores, 63 at most (PostgreSQL's limit; MySQL's is 64).
 */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const TABLE_NAME = /^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const PATH = /^[^.\s]{1,200}(\.[^.\s]{1,200}){0,31}$/;

export class TargetsError extends Error {
  override name = 'TargetsError';
}

const identifier = (what: string) =>
  z.string({ error: `${what} must be a string` }).regex(IDENTIFIER, `${what} must be a plain identifier (letters, digits and _, not starting with a digit, at most 63)`);

const fileSchema = z.strictObject(
  {
    databases: z.record(
      z.string().regex(NAME, 'a database name must be 1 to 64 letters, digits, _ or -'),
      z.union([z.string(), z.strictObject({ env: z.string().regex(ENV_NAME, '"env" must name an environment variable') })], {
        error: 'must be a URL or { "env": NAME }',
      }),
    ),
    entities: z.record(
      z.string().min(1).max(200),
      z.strictObject({
        database: z.string({ error: '"database" is required' }),
        table: z.string({ error: '"table" is required' }).regex(TABLE_NAME, '"table" must be a plain identifier, or schema.table'),
        key: z.union([identifier('"key"'), z.array(identifier('each key column')).min(1, '"key" must name at least one column').max(16)], {
          error: '"key" must be a column name or a list of them',
        }),
        columns: z
          .record(identifier('a column name'), z.string().regex(PATH, 'each column maps to a dot path into data, such as "customer.id"'))
          .optional(),
        onDelete: z
          .union([z.literal('delete'), z.strictObject({ softDelete: identifier('"softDelete"') })], {
            error: '"onDelete" must be "delete" or { "softDelete": COLUMN }',
          })
          .optional(),
      }),
    ),
  },
  { error: 'must hold "databases" and "entities" and nothing else' },
);

/** Reads and checks the mapping file; `env` resolves `{ "env": NAME }` databases. Throws TargetsError. */
export function readTargetsMapping(path: string, env: NodeJS.ProcessEnv = process.env): TargetsMapping {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TargetsError(`OUTBOX_SYNC_TARGETS: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new TargetsError(`OUTBOX_SYNC_TARGETS: ${path} is not valid JSON`);
  }
  return parseTargetsMapping(json, env, `OUTBOX_SYNC_TARGETS (${path})`);
}

/** Checks a parsed mapping; `where` starts each error line. */
export function parseTargetsMapping(json: unknown, env: NodeJS.ProcessEnv, where = 'OUTBOX_SYNC_TARGETS'): TargetsMapping {
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    let issue = parsed.error.issues[0]!;
    const [section, name] = issue.path;
    // A bad key of a record (a column name, say) carries its own issue inside.
    if (issue.code === 'invalid_key' && issue.issues[0]) issue = { ...issue.issues[0], path: issue.path } as typeof issue;
    const at = section === 'entities' && name !== undefined ? `entity "${String(name)}": ` : section === 'databases' && name !== undefined ? `database "${String(name)}": ` : '';
    throw new TargetsError(`${where}: ${at}${issue.message}`);
  }
  const databases = new Map<string, TargetDatabase>();
  for (const [name, given] of Object.entries(parsed.data.databases)) {
    const fromEnv = typeof given === 'string' ? null : given.env;
    const url = fromEnv === null ? (given as string) : env[fromEnv];
    if (url === undefined || url === '') throw new TargetsError(`${where}: database "${name}": the environment variable ${fromEnv} is not set`);
    databases.set(name, { name, engine: engineOf(url, `${where}: ${fromEnv ?? `database "${name}"`}`), url, env: fromEnv });
  }
  const entities = new Map<string, EntityMapping>();
  const tables = new Map<string, string>();
  for (const [entity, spec] of Object.entries(parsed.data.entities)) {
    const fail = (reason: string) => new TargetsError(`${where}: entity "${entity}": ${reason}`);
    if (!databases.has(spec.database)) throw fail(`"database" names "${spec.database}", which "databases" does not define`);
    const keyColumns = typeof spec.key === 'string' ? [spec.key] : spec.key;
    const twice = keyColumns.find((column, i) => keyColumns.indexOf(column) !== i);
    if (twice) throw fail(`key column ${twice} is named twice`);
    const onDelete: EntityMapping['onDelete'] = spec.onDelete === undefined || spec.onDelete === 'delete' ? { kind: 'delete' } : { kind: 'softDelete', column: spec.onDelete.softDelete };
    const columns = spec.columns ? Object.entries(spec.columns).map(([column, path]) => ({ column, path: path.split('.') })) : null;
    for (const { column } of columns ?? []) {
      if (keyColumns.includes(column)) throw fail(`column ${column} is the key; the message's key fills it, so "columns" must not map it`);
      if (onDelete.kind === 'softDelete' && onDelete.column === column) throw fail(`column ${column} is the soft-delete column; "columns" must not map it`);
    }
    if (onDelete.kind === 'softDelete' && keyColumns.includes(onDelete.column)) throw fail(`the soft-delete column ${onDelete.column} is a key column`);
    // Two entities writing one table would guard their versions apart and overwrite each other.
    const place = `${spec.database}/${spec.table}`;
    const other = tables.get(place);
    if (other !== undefined) throw fail(`table ${spec.table} in "${spec.database}" is already the table of entity "${other}"`);
    tables.set(place, entity);
    entities.set(entity, { entity, database: spec.database, table: spec.table, keyColumns, columns, onDelete });
  }
  return { databases, entities };
}

function engineOf(url: string, where: string): Engine {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    throw new TargetsError(`${where}: is not a URL`);
  }
  if (protocol === 'postgres:' || protocol === 'postgresql:') return 'postgres';
  if (protocol === 'mysql:' || protocol === 'mariadb:') return 'mysql';
  throw new TargetsError(`${where}: the URL must start with postgres://, postgresql://, mysql:// or mariadb:// (got ${protocol}//)`);
}

/** Where an entity's rows go, for people: a mapped database and table, or the default target. */
export interface Placement {
  database: string;
  table: string;
}

export const DEFAULT_PLACEMENT: Placement = Object.freeze({ database: 'TARGET_DATABASE_URL', table: 'synced_records' });

export function placementOf(mapping: TargetsMapping | null, entity: string): Placement {
  const mapped = mapping?.entities.get(entity);
  return mapped ? { database: mapped.database, table: mapped.table } : { ...DEFAULT_PLACEMENT };
}

/** A database's address for messages: host, port and database name, never the password. */
export function describeAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}${parsed.port ? `:${parsed.port}` : ''}${parsed.pathname}`;
  } catch {
    return '(an invalid URL)';
  }
}
