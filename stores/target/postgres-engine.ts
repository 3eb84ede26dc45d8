/** A user's PostgreSQL database as a target, through `pg`: one pool, TLS as the URL asks (sslmode, …). */
import pg from 'pg';
import { pgSettings } from '../postgres/connect';
import { isPermanentDatabaseError } from '../postgres/errors';
import { migrate } from '../postgres/migrate';
import { inTransaction } from '../postgres/transaction';
import { compareChunks, quoteTable, rowProblem, type RowWrite, type TableSchema, type TargetEngine, type TargetProblem } from './engine';
import type { ColumnKind, ColumnSchema } from './values';

const INTEGER_RANGES: Record<string, { min: bigint; max: bigint }> = {
  smallint: { min: -32768n, max: 32767n },
  integer: { min: -2147483648n, max: 2147483647n },
  bigint: { min: -9223372036854775808n, max: 9223372036854775807n },
};

function kindOf(dataType: string): ColumnKind {
  if (dataType in INTEGER_RANGES) return 'integer';
  switch (dataType) {
    case 'numeric':
      return 'decimal';
    case 'real':
    case 'double precision':
      return 'float';
    case 'text':
    case 'character varying':
    case 'character':
      return 'text';
    case 'boolean':
      return 'boolean';
    case 'date':
      return 'date';
    case 'timestamp with time zone':
    case 'timestamp without time zone':
      return 'timestamp';
    case 'json':
    case 'jsonb':
      return 'json';
    default:
      return 'other';
  }
}

/**
 * A write as the JSON that compareChunk reads: its key, and its row by column name. A JSON column's value
 * is JSON text already (numbers exact) and goes in as it is; every other value as a JSON string, number
 * or boolean, which the column type's input reads as it reads a parameter.
 */
function expectedRow(write: RowWrite, jsonColumns: ReadonlySet<string>): string {
  const effect = write.effect;
  const columns = [...write.keyColumns, ...(effect.kind === 'upsert' ? effect.columns : effect.kind === 'softDelete' ? [effect.column] : [])];
  const values = [...write.keyValues, ...(effect.kind === 'upsert' ? effect.values : effect.kind === 'softDelete' ? [effect.value] : [])];
  const fields = columns.map((column, i) => {
    const value = values[i];
    return `${JSON.stringify(column)}:${value !== null && jsonColumns.has(column) ? String(value) : JSON.stringify(value)}`;
  });
  return `{"key":${JSON.stringify(write.key)},"row":{${fields.join(',')}}}`;
}

export class PostgresEngine implements TargetEngine {
  readonly engine = 'postgres' as const;
  private readonly pool: pg.Pool;

  constructor(url: string, poolSize: number) {
    this.pool = new pg.Pool(pgSettings(url, { max: poolSize }));
    // A connection the server dropped while idle; the pool replaces it on next use.
    this.pool.on('error', () => undefined);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async describeTable(table: string): Promise<TableSchema | null> {
    const quoted = quoteTable(table, pg.escapeIdentifier);
    const { rows: found } = await this.pool.query<{ schema: string; name: string }>(
      `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`,
      [quoted],
    );
    const place = found[0];
    if (!place) return null;
    const { rows } = await this.pool.query(
      `SELECT column_name, data_type, is_nullable, character_maximum_length, numeric_precision, numeric_scale,
              is_generated, identity_generation, column_default,
              format_type(a.atttypid, a.atttypmod) AS sql_type
         FROM information_schema.columns c
         JOIN pg_attribute a ON a.attrelid = to_regclass($3) AND a.attname = c.column_name
        WHERE c.table_schema = $1 AND c.table_name = $2
        ORDER BY c.ordinal_position`,
      [place.schema, place.name, quoted],
    );
    const columns = new Map<string, ColumnSchema>();
    const required = new Set<string>();
    for (const row of rows) {
      const kind = kindOf(row.data_type);
      if (row.is_nullable === 'NO' && row.column_default === null && row.identity_generation === null && row.is_generated !== 'ALWAYS') required.add(row.column_name);
      columns.set(row.column_name, {
        name: row.column_name,
        kind,
        sqlType: row.sql_type,
        nullable: row.is_nullable === 'YES',
        generated: row.is_generated === 'ALWAYS' || row.identity_generation === 'ALWAYS',
        maxLength: kind === 'text' ? row.character_maximum_length : null,
        precision: kind === 'decimal' ? row.numeric_precision : null,
        scale: kind === 'decimal' ? row.numeric_scale : null,
        range: INTEGER_RANGES[row.data_type] ?? null,
        takesOffset: row.data_type === 'timestamp with time zone',
      });
    }
    // ON CONFLICT needs a unique index on exactly the key columns, not partial, not on expressions, not deferred.
    const { rows: keys } = await this.pool.query<{ columns: string[] }>(
      `SELECT array_agg(a.attname::text ORDER BY k.ord) AS columns
         FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indimmediate AND i.indpred IS NULL AND i.indexprs IS NULL
        GROUP BY i.indexrelid`,
      [quoted],
    );
    return { name: `${place.schema}.${place.name}`, columns, uniqueKeys: keys.map((k) => k.columns), required, caseInsensitive: false };
  }

  async hasVersionsTable(): Promise<boolean> {
    const { rows } = await this.pool.query(`SELECT to_regclass('outbox_sync_versions') IS NOT NULL AS present`);
    return rows[0].present;
  }

  async migrate(): Promise<string[]> {
    return migrate(this.pool, 'versions');
  }

  async write(write: RowWrite): Promise<boolean> {
    const q = pg.escapeIdentifier;
    const table = quoteTable(write.table, q);
    const keyColumns = write.keyColumns.map(q);
    return inTransaction(this.pool, async (client) => {
      // The guard: the conflicting row is locked whether or not it is newer, so writers of one key take turns.
      const guard = await client.query(
        `INSERT INTO outbox_sync_versions AS v (entity, entity_key, version, deleted, message_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (entity, entity_key) DO UPDATE
            SET version = EXCLUDED.version, deleted = EXCLUDED.deleted, message_id = EXCLUDED.message_id, synced_at = now()
          WHERE v.version < EXCLUDED.version OR ($6 AND v.version = EXCLUDED.version)`,
        [write.entity, write.key, write.version, write.effect.kind !== 'upsert', write.messageId, write.overwrite === true],
      );
      if (guard.rowCount !== 1) return false;
      const where = keyColumns.map((column, i) => `${column} = $${i + 1}`).join(' AND ');
      const effect = write.effect;
      if (effect.kind === 'delete') {
        await client.query(`DELETE FROM ${table} WHERE ${where}`, write.keyValues);
      } else if (effect.kind === 'softDelete') {
        await client.query(`UPDATE ${table} SET ${q(effect.column)} = $${keyColumns.length + 1} WHERE ${where}`, [...write.keyValues, effect.value]);
      } else {
        const columns = [...keyColumns, ...effect.columns.map(q)];
        const placeholders = columns.map((_, i) => `$${i + 1}`).join(', ');
        const update = effect.columns.length
          ? `DO UPDATE SET ${effect.columns.map((column) => `${q(column)} = EXCLUDED.${q(column)}`).join(', ')}`
          : 'DO NOTHING';
        await client.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${placeholders}) ON CONFLICT (${keyColumns.join(', ')}) ${update}`, [
          ...write.keyValues,
          ...effect.values,
        ]);
      }
      return true;
    });
  }

  async compare(writes: readonly RowWrite[], jsonColumns: ReadonlySet<string>): Promise<(TargetProblem | null)[]> {
    const problems = new Array<TargetProblem | null>(writes.length).fill(null);
    for (const chunk of compareChunks(writes)) {
      const found = await this.compareChunk(chunk.map((at) => writes[at]!), jsonColumns);
      chunk.forEach((at, n) => (problems[at] = found[n]!));
    }
    return problems;
  }

  /**
   * One query for writes of one shape (the same table, effect and columns). The expected rows travel as
   * one JSON document, and jsonb_populate_record turns each into a row of the table's own type, each value
   * through its column type's input, as a parameter of that type would be: then every key is one join to
   * its bookkeeping row and one to its row, whatever the number of keys.
   */
  private async compareChunk(writes: readonly RowWrite[], jsonColumns: ReadonlySet<string>): Promise<(TargetProblem | null)[]> {
    const q = pg.escapeIdentifier;
    const first = writes[0]!;
    const table = quoteTable(first.table, q);
    const effect = first.effect;
    const compared = effect.kind === 'upsert' ? effect.columns : effect.kind === 'softDelete' ? [effect.column] : [];
    const same = compared.map((column) =>
      jsonColumns.has(column) ? `t.${q(column)}::jsonb IS NOT DISTINCT FROM e.${q(column)}::jsonb` : `t.${q(column)} IS NOT DISTINCT FROM e.${q(column)}`,
    );
    const join = first.keyColumns.map((column) => `t.${q(column)} = e.${q(column)}`).join(' AND ');
    const { rows } = await this.pool.query<{ i: number; version: string | null; same: boolean | null }>(
      `SELECT x.i::int AS i, v.version::text AS version,
              CASE WHEN t.${q(first.keyColumns[0]!)} IS NULL THEN NULL ELSE (${same.join(' AND ') || 'true'}) END AS same
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x (expected, i)
        CROSS JOIN LATERAL jsonb_populate_record(NULL::${table}, x.expected -> 'row') AS e
         LEFT JOIN outbox_sync_versions v ON v.entity = $2 AND v.entity_key = x.expected ->> 'key'
         LEFT JOIN ${table} AS t ON ${join}`,
      [`[${writes.map((write) => expectedRow(write, jsonColumns)).join(',')}]`, first.entity],
    );
    const problems = new Array<TargetProblem | null>(writes.length).fill(null);
    for (const row of rows) problems[row.i - 1] = rowProblem(writes[row.i - 1]!, row.version, row.same);
    return problems;
  }

  isPermanent(err: unknown): boolean {
    return isPermanentDatabaseError(err);
  }

  columnOf(err: unknown): string | undefined {
    const column = (err as { column?: unknown } | null)?.column;
    return typeof column === 'string' ? column : undefined;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
