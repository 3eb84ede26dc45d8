/**
 * A user's MariaDB or MySQL database as a target, through `mysql2`: one pool, TLS as the URL asks
 * (`?ssl={"ca":…}`, as mysql2 reads it). Every connection runs in strict mode (no silent truncation, no
 * zero dates), in UTC, at READ COMMITTED, whatever the server's defaults are.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2';
import type { Pool, PoolConnection } from 'mysql2/promise';
import { packageRoot } from '../../config/package-root';
import { compareChunks, quoteTable, rowProblem, type RowWrite, type TableSchema, type TargetEngine, type TargetProblem } from './engine';
import type { ColumnKind, ColumnSchema } from './values';

const SESSION = [
  "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
  "SET SESSION time_zone = '+00:00'",
  // No gap locks: writers of different keys never wait for (or deadlock with) each other.
  'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
];

/**
 * Errors that the same write raises again: the data does not fit (class 22), a constraint refuses it
 * (class 23), or one of the value errors MySQL files under the general class HY000.
 */
const PERMANENT_ERRNOS = new Set([
  1048, // column cannot be null
  1062, // duplicate entry (another unique key)
  1264, // out of range
  1265, // data truncated
  1292, // incorrect date/time value
  1366, // incorrect value for the column's type
  1364, // no default value
  1406, // data too long
  1451, // a child row references it
  1452, // the parent row is missing
  1690, // out of range in an expression
  3140, // invalid JSON (MySQL)
  3819, // check constraint (MySQL)
  4025, // check constraint (MariaDB)
]);

const INTEGER_BITS: Record<string, bigint> = { tinyint: 8n, smallint: 16n, mediumint: 24n, int: 32n, bigint: 64n };

function kindOf(dataType: string): ColumnKind {
  if (dataType in INTEGER_BITS) return 'integer';
  switch (dataType) {
    case 'decimal':
      return 'decimal';
    case 'float':
    case 'double':
      return 'float';
    case 'char':
    case 'varchar':
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
      return 'text';
    case 'date':
      return 'date';
    case 'datetime':
    case 'timestamp':
      return 'timestamp';
    case 'json':
      return 'json';
    default:
      return 'other';
  }
}

function integerRange(dataType: string, columnType: string): { min: bigint; max: bigint } | null {
  const bits = INTEGER_BITS[dataType];
  if (bits === undefined) return null;
  if (/unsigned/i.test(columnType)) return { min: 0n, max: 2n ** bits - 1n };
  return { min: -(2n ** (bits - 1n)), max: 2n ** (bits - 1n) - 1n };
}

/** `schema.table` or `table` into its schema (null: the connection's database) and name. */
function splitTable(table: string): [string | null, string] {
  const at = table.indexOf('.');
  return at < 0 ? [null, table] : [table.slice(0, at), table.slice(at + 1)];
}

const quote = (identifier: string) => `\`${identifier.replaceAll('`', '``')}\``;

export class MysqlEngine implements TargetEngine {
  readonly engine = 'mysql' as const;
  private readonly pool: Pool;
  /** Whether the server is MariaDB, asked once. */
  private mariadb: Promise<boolean> | undefined;

  constructor(url: string, poolSize: number) {
    const parsed = new URL(url);
    if (parsed.protocol === 'mariadb:') parsed.protocol = 'mysql:';
    const core = mysql.createPool({
      uri: parsed.toString(),
      connectionLimit: poolSize,
      // Exact numbers and times come back as text, never through a double or the process's zone.
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      timezone: 'Z',
    });
    core.on('connection', (connection) => {
      // A connection the server dropped while idle; the pool makes a new one on next use.
      connection.on('error', () => undefined);
      for (const statement of SESSION) connection.query(statement, (err) => err && connection.destroy());
    });
    this.pool = core.promise();
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async describeTable(table: string): Promise<TableSchema | null> {
    const [schema, name] = splitTable(table);
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
      `SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, IS_NULLABLE AS nullable,
              CHARACTER_MAXIMUM_LENGTH AS max_length, NUMERIC_PRECISION AS num_precision, NUMERIC_SCALE AS num_scale,
              EXTRA AS extra, TABLE_SCHEMA AS table_schema, COLUMN_DEFAULT AS column_default
         FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
        ORDER BY ORDINAL_POSITION`,
      [schema, name],
    );
    if (rows.length === 0) return null;
    const jsonColumns = await this.mariadbJsonColumns(rows[0]!.table_schema, name);
    const columns = new Map<string, ColumnSchema>();
    const required = new Set<string>();
    for (const row of rows) {
      const dataType = String(row.data_type).toLowerCase();
      const generated = /GENERATED|VIRTUAL|PERSISTENT|STORED/i.test(String(row.extra));
      if (row.nullable === 'NO' && row.column_default === null && !generated && !/auto_increment/i.test(String(row.extra))) required.add(row.name);
      const kind = jsonColumns.has(row.name) ? 'json' : kindOf(dataType);
      columns.set(row.name, {
        name: row.name,
        kind,
        sqlType: String(row.column_type),
        nullable: row.nullable === 'YES',
        generated,
        // TEXT types count bytes in information_schema; the server checks those itself (strict mode).
        maxLength: dataType === 'char' || dataType === 'varchar' ? Number(row.max_length) : null,
        precision: kind === 'decimal' ? Number(row.num_precision) : null,
        scale: kind === 'decimal' ? Number(row.num_scale) : null,
        range: integerRange(dataType, String(row.column_type)),
        takesOffset: false,
      });
    }
    const [keyRows] = await this.pool.query<mysql.RowDataPacket[]>(
      `SELECT INDEX_NAME AS index_name, COLUMN_NAME AS column_name, SUB_PART AS sub_part
         FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0
        ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
      [rows[0]!.table_schema, name],
    );
    const keys = new Map<string, { columns: string[]; prefix: boolean }>();
    for (const row of keyRows) {
      const key = keys.get(row.index_name) ?? { columns: [], prefix: false };
      key.columns.push(row.column_name);
      // A unique prefix of a column is not the column's identity.
      if (row.sub_part !== null) key.prefix = true;
      keys.set(row.index_name, key);
    }
    return {
      name: `${rows[0]!.table_schema}.${name}`,
      columns,
      uniqueKeys: [...keys.values()].filter((k) => !k.prefix).map((k) => k.columns),
      required,
      caseInsensitive: true,
    };
  }

  /** MariaDB's JSON is LONGTEXT with a json_valid() check named after the column; MySQL's is a type of its own. */
  private async mariadbJsonColumns(schema: string, table: string): Promise<Set<string>> {
    try {
      const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
        `SELECT CONSTRAINT_NAME AS name, CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS
          WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`,
        [schema, table],
      );
      return new Set(rows.filter((r) => /^json_valid\(`[^`]+`\)$/i.test(String(r.clause))).map((r) => String(r.clause).slice(12, -2)));
    } catch {
      return new Set(); // MySQL: CHECK_CONSTRAINTS has no TABLE_NAME, and JSON columns say so themselves.
    }
  }

  async hasVersionsTable(): Promise<boolean> {
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(
      `SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'outbox_sync_versions'`,
    );
    return rows.length > 0;
  }

  /**
   * The MySQL migrations, in order, each recorded once. DDL commits by itself in MySQL, so each file is
   * written to be safe to run again (CREATE … IF NOT EXISTS); a named lock keeps two migrators apart.
   */
  async migrate(): Promise<string[]> {
    const dir = join(packageRoot, 'stores', 'migrations', 'versions-mysql');
    const files = readdirSync(dir)
      .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
      .sort();
    const connection = await this.pool.getConnection();
    try {
      const [[lock]] = await connection.query<mysql.RowDataPacket[]>(`SELECT GET_LOCK('outbox_sync_migrations', 60) AS got`);
      if (lock?.got !== 1) throw new Error('another migrate holds the lock outbox_sync_migrations for over 60 s');
      try {
        await connection.query(
          `CREATE TABLE IF NOT EXISTS outbox_sync_migrations (
             name varchar(200) NOT NULL PRIMARY KEY,
             applied_at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE = InnoDB`,
        );
        const [done] = await connection.query<mysql.RowDataPacket[]>('SELECT name FROM outbox_sync_migrations');
        const seen = new Set(done.map((r) => r.name));
        const applied: string[] = [];
        for (const file of files) {
          const name = `versions-mysql/${file}`;
          if (seen.has(name)) continue;
          await connection.query(readFileSync(join(dir, file), 'utf8'));
          await connection.query('INSERT INTO outbox_sync_migrations (name) VALUES (?)', [name]);
          applied.push(name);
        }
        return applied;
      } finally {
        await connection.query(`SELECT RELEASE_LOCK('outbox_sync_migrations')`);
      }
    } finally {
      connection.release();
    }
  }

  async write(write: RowWrite): Promise<boolean> {
    const keyHash = createHash('sha256').update(write.key).digest();
    // The key's bookkeeping row exists before the transaction, so that concurrent writers of a new key
    // queue on its row lock instead of racing to insert it (which InnoDB can answer with a deadlock).
    await this.pool.query(
      `INSERT IGNORE INTO outbox_sync_versions (entity, key_hash, entity_key, version, deleted, message_id) VALUES (?, ?, ?, -1, false, 0)`,
      [write.entity, keyHash, write.key],
    );
    const connection = await this.pool.getConnection();
    try {
      await connection.beginTransaction();
      try {
        const applied = await this.writeLocked(connection, write, keyHash);
        await connection.commit();
        return applied;
      } catch (err) {
        await connection.rollback().catch(() => undefined);
        throw err;
      }
    } finally {
      connection.release();
    }
  }

  private async writeLocked(connection: PoolConnection, write: RowWrite, keyHash: Buffer): Promise<boolean> {
    const [[current]] = await connection.query<mysql.RowDataPacket[]>(
      'SELECT version FROM outbox_sync_versions WHERE entity = ? AND key_hash = ? FOR UPDATE',
      [write.entity, keyHash],
    );
    const [have, want] = [BigInt(current?.version ?? -1), BigInt(write.version)];
    if (have > want || (have === want && !write.overwrite)) return false;
    const table = quoteTable(write.table, quote);
    const keyColumns = write.keyColumns.map(quote);
    const where = keyColumns.map((column) => `${column} = ?`).join(' AND ');
    const effect = write.effect;
    if (effect.kind === 'delete') {
      await connection.query(`DELETE FROM ${table} WHERE ${where}`, write.keyValues);
    } else if (effect.kind === 'softDelete') {
      await connection.query(`UPDATE ${table} SET ${quote(effect.column)} = ? WHERE ${where}`, [effect.value, ...write.keyValues]);
    } else {
      // UPDATE, then INSERT if no row matched (the key's lock is held, so no other writer of it comes
      // between): unlike ON DUPLICATE KEY UPDATE, a clash on another unique key is refused, never written
      // into the other row. mysql2 counts matched rows, changed or not (CLIENT_FOUND_ROWS).
      let matched: number;
      if (effect.columns.length) {
        const [updated] = await connection.query<mysql.ResultSetHeader>(
          `UPDATE ${table} SET ${effect.columns.map((column) => `${quote(column)} = ?`).join(', ')} WHERE ${where}`,
          [...effect.values, ...write.keyValues],
        );
        matched = updated.affectedRows;
      } else {
        const [[found]] = await connection.query<mysql.RowDataPacket[]>(`SELECT 1 AS found FROM ${table} WHERE ${where}`, write.keyValues);
        matched = found ? 1 : 0;
      }
      if (matched === 0) {
        const columns = [...keyColumns, ...effect.columns.map(quote)];
        await connection.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`, [...write.keyValues, ...effect.values]);
      }
    }
    await connection.query(
      'UPDATE outbox_sync_versions SET version = ?, deleted = ?, message_id = ?, synced_at = CURRENT_TIMESTAMP(6) WHERE entity = ? AND key_hash = ?',
      [write.version, effect.kind !== 'upsert', write.messageId, write.entity, keyHash],
    );
    return true;
  }

  async compare(writes: readonly RowWrite[], jsonColumns: ReadonlySet<string>): Promise<(TargetProblem | null)[]> {
    const mariadb = await this.isMariadb();
    const problems = new Array<TargetProblem | null>(writes.length).fill(null);
    for (const chunk of compareChunks(writes)) {
      const found = await this.compareChunk(chunk.map((at) => writes[at]!), jsonColumns, mariadb);
      chunk.forEach((at, n) => (problems[at] = found[n]!));
    }
    return problems;
  }

  /**
   * One query for the whole chunk: per write, a branch that reads the key's bookkeeping version and
   * whether its row holds the write's values (null when there is no row), each a lookup by a unique key.
   * Each value stays a constant beside its column, as MySQL compares a column with a constant in the
   * column's type (a time as a time); mysql2's query() fills the placeholders in on the client, so their
   * number has no limit.
   */
  private async compareChunk(writes: readonly RowWrite[], jsonColumns: ReadonlySet<string>, mariadb: boolean): Promise<(TargetProblem | null)[]> {
    const params: unknown[] = [];
    const equal = (column: string, value: unknown) => {
      if (!jsonColumns.has(column)) {
        params.push(value);
        return `${quote(column)} <=> ?`;
      }
      if (value === null) return `${quote(column)} IS NULL`;
      params.push(value);
      // MariaDB's JSON is text: compared as JSON by JSON_EQUALS; MySQL's JSON type compares as JSON.
      return mariadb ? `JSON_EQUALS(${quote(column)}, ?) <=> 1` : `${quote(column)} = CAST(? AS JSON)`;
    };
    const branches = writes.map((write, i) => {
      params.push(write.entity, createHash('sha256').update(write.key).digest());
      const version = 'SELECT CAST(version AS CHAR) FROM outbox_sync_versions WHERE entity = ? AND key_hash = ?';
      const effect = write.effect;
      const same =
        effect.kind === 'upsert' ? effect.columns.map((column, n) => equal(column, effect.values[n])) : effect.kind === 'softDelete' ? [equal(effect.column, effect.value)] : [];
      params.push(...write.keyValues);
      const where = write.keyColumns.map((column) => `${quote(column)} = ?`).join(' AND ');
      // A JSON column that is NULL compares as NULL, not false: COALESCE keeps null for "no row" alone.
      return `SELECT ${i} AS i, (${version}) AS version, (SELECT COALESCE(${same.join(' AND ') || 'TRUE'}, FALSE) FROM ${quoteTable(write.table, quote)} WHERE ${where}) AS same`;
    });
    const [rows] = await this.pool.query<mysql.RowDataPacket[]>(branches.join('\nUNION ALL '), params);
    const problems = new Array<TargetProblem | null>(writes.length).fill(null);
    for (const row of rows) problems[Number(row.i)] = rowProblem(writes[Number(row.i)]!, row.version === null ? null : String(row.version), row.same === null ? null : Number(row.same) === 1);
    return problems;
  }

  private isMariadb(): Promise<boolean> {
    if (!this.mariadb) {
      const asked = this.pool.query<mysql.RowDataPacket[]>('SELECT VERSION() AS version').then(([rows]) => /mariadb/i.test(String(rows[0]!.version)));
      asked.catch(() => (this.mariadb = undefined)); // asked again next time
      this.mariadb = asked;
    }
    return this.mariadb;
  }

  isPermanent(err: unknown): boolean {
    const { errno, sqlState } = (err ?? {}) as { errno?: unknown; sqlState?: unknown };
    if (typeof errno === 'number' && PERMANENT_ERRNOS.has(errno)) return true;
    return typeof sqlState === 'string' && (sqlState.startsWith('22') || sqlState.startsWith('23'));
  }

  columnOf(err: unknown): string | undefined {
    const text = String((err as { sqlMessage?: unknown } | null)?.sqlMessage ?? '');
    return /(?:for column|Column) [`']([^`']+)[`']/.exec(text)?.[1];
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
