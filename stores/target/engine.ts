/**
 * What outbox-sync needs of a user's database, once per engine (postgres-engine.ts, mysql-engine.ts): the
 * live shape of a table, the bookkeeping table `migrate` creates, and one version-guarded write.
 */
import type { Engine } from './mapping';
import type { ColumnSchema } from './values';

export interface TableSchema {
  /** As the database names it: `schema.table`. */
  name: string;
  /** By column name, in table order. */
  columns: Map<string, ColumnSchema>;
  /** Each primary or unique key usable as the row's identity, as its column names. */
  uniqueKeys: string[][];
  /** NOT NULL columns without a default: every insert must give them a value. */
  required: Set<string>;
  /** MySQL matches column names whatever their case; PostgreSQL (quoted) does not. */
  caseInsensitive: boolean;
}

/**
 * One message's effect on one row. The bookkeeping row (entity, key) is compared with `version` first;
 * only a newer version writes the user's row, in the same transaction.
 */
export interface RowWrite {
  entity: string;
  key: string;
  version: string;
  messageId: number;
  table: string;
  keyColumns: string[];
  keyValues: unknown[];
  /**
   * upsert: the row's other columns and their values (the soft-delete column cleared);
   * delete: removes the row; softDelete: sets that one column.
   */
  /** A repair (verify --repair): an equal version is replaced too, a newer one never. */
  overwrite?: boolean;
  effect:
    | { kind: 'upsert'; columns: string[]; values: unknown[] }
    | { kind: 'delete' }
    | { kind: 'softDelete'; column: string; value: unknown };
}

/** How a key's row differs from its newest completed message (see stores/verify.ts). */
export type TargetProblem = 'missing' | 'stale' | 'different';

export interface TargetEngine {
  readonly engine: Engine;
  /** Throws when the database does not answer. */
  ping(): Promise<void>;
  /** null when the table does not exist. */
  describeTable(table: string): Promise<TableSchema | null>;
  /** Whether `migrate` has created the bookkeeping table here. */
  hasVersionsTable(): Promise<boolean>;
  /** Creates or upgrades the bookkeeping table; returns the migrations applied. */
  migrate(): Promise<string[]>;
  /** Applies the write if its version is newer than the key's; returns whether it did. */
  write(write: RowWrite): Promise<boolean>;
  /**
   * For each write (all of one entity's table), whether the key's row is what it makes it: null when it
   * is (or a newer version is there), else the problem. Each value is compared by the database with the
   * column's own equality, as it would store it; `jsonColumns` are compared as JSON, not as text. A batch
   * is one query per shape of write (its upserts, its deletes), each kept to about a megabyte (compareChunks).
   */
  compare(writes: readonly RowWrite[], jsonColumns: ReadonlySet<string>): Promise<(TargetProblem | null)[]>;
  /** Whether an error from this driver is the data's fault (the same write would fail again). */
  isPermanent(err: unknown): boolean;
  /** The column a driver error is about, when it says. */
  columnOf(err: unknown): string | undefined;
  close(): Promise<void>;
}

/** Who may be written: a plain name, or schema.name, each part quoted by `quote`. */
export function quoteTable(table: string, quote: (identifier: string) => string): string {
  return table.split('.').map(quote).join('.');
}

/**
 * One write's problem from what the comparison read: the key's bookkeeping version (null: no row there),
 * and whether the user's row holds the write's values (null: no row).
 */
export function rowProblem(write: RowWrite, version: string | null, same: boolean | null): TargetProblem | null {
  const byVersion = versionProblem(version, write.version);
  if (byVersion !== null) return byVersion === 'newer' ? null : byVersion;
  if (write.effect.kind === 'delete') return same === null ? null : 'different';
  // A soft delete of a key that never had a row leaves none.
  if (same === null) return write.effect.kind === 'softDelete' ? null : 'missing';
  return same ? null : 'different';
}

/** The bookkeeping row's version against the message's: null when they are equal and the row itself must be compared. */
function versionProblem(found: string | null | undefined, expected: string): TargetProblem | 'newer' | null {
  if (found === null || found === undefined || BigInt(found) < 0n) return 'missing';
  const [have, want] = [BigInt(found), BigInt(expected)];
  if (have < want) return 'stale';
  return have > want ? 'newer' : null;
}

/** The values one write is compared on: its key columns, and the values its effect writes. */
function comparedValues(write: RowWrite): unknown[] {
  const effect = write.effect;
  return [...write.keyValues, ...(effect.kind === 'upsert' ? effect.values : effect.kind === 'softDelete' ? [effect.value] : [])];
}

/** About this much value text per comparison query, well under the smallest default max_allowed_packet of MySQL and MariaDB (4 MiB). */
const COMPARE_CHUNK_BYTES = 1024 * 1024;

/**
 * A batch of writes as the runs that one comparison query each can carry, by their positions in `writes`:
 * writes of one shape (entity, table, effect and columns: an entity's upserts, or its deletes), and about a
 * megabyte of values at most (a message's data may be 256 KiB), so that a batch of any size is a handful
 * of queries, never one per key.
 */
export function compareChunks(writes: readonly RowWrite[]): number[][] {
  const chunks: number[][] = [];
  const open = new Map<string, { at: number[]; bytes: number }>();
  for (const [at, write] of writes.entries()) {
    const effect = write.effect;
    const shape = [write.entity, write.table, effect.kind, ...(effect.kind === 'upsert' ? effect.columns : effect.kind === 'softDelete' ? [effect.column] : [])].join('\u0000');
    const bytes = comparedValues(write).reduce<number>((sum, value) => sum + (value === null ? 0 : String(value).length), 0);
    let chunk = open.get(shape);
    if (chunk && chunk.bytes + bytes > COMPARE_CHUNK_BYTES) {
      chunks.push(chunk.at);
      chunk = undefined;
    }
    if (!chunk) open.set(shape, (chunk = { at: [], bytes: 0 }));
    chunk.at.push(at);
    chunk.bytes += bytes;
  }
  for (const chunk of open.values()) chunks.push(chunk.at);
  return chunks;
}
