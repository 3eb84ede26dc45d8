/**
 * JSON values into the user's columns. Each column is described once from the live schema (its kind,
 * nullability, length, precision); each value is converted for it here, before the database sees it, so
 * that a value that does not fit fails with a reason naming the column, and no engine rounds, truncates or
 * shifts a time zone silently. Numbers arrive as LosslessNumber (the data is parsed without going through
 * a double), so integers past 2^53 and decimals stay exact.
 */
import { isLosslessNumber, parse, stringify, type LosslessNumber } from 'lossless-json';

export type ColumnKind = 'integer' | 'decimal' | 'float' | 'text' | 'boolean' | 'date' | 'timestamp' | 'json' | 'other';

export interface ColumnSchema {
  name: string;
  kind: ColumnKind;
  /** The database's own name of the type, for messages: `integer`, `varchar(20)`, `bigint unsigned`. */
  sqlType: string;
  nullable: boolean;
  /** Generated or identity-always columns cannot be written. */
  generated: boolean;
  /** text: the most characters; null for no limit. */
  maxLength: number | null;
  /** decimal: digits in all and after the point; null when unconstrained. */
  precision: number | null;
  scale: number | null;
  /** integer: the range the type holds. */
  range: { min: bigint; max: bigint } | null;
  /**
   * timestamp: whether the literal may carry its offset (PostgreSQL's timestamptz). Elsewhere the UTC time is
   * written bare: MySQL's TIMESTAMP reads it in the session's zone, which is UTC for these writes.
   */
  takesOffset: boolean;
}

/** A value that does not fit its column; the message fails alone, permanently. */
export class ValueError extends Error {
  override name = 'ValueError';
  constructor(
    readonly column: string,
    readonly reason: string,
  ) {
    super(`column ${column}: ${reason}`);
  }
}

/** Message data parsed with its numbers kept exact. */
export function parseData(text: string): unknown {
  return parse(text);
}

/** JSON text of a value parsed by parseData, numbers as they came. */
export function toJsonText(value: unknown): string {
  return stringify(value) ?? 'null';
}

/** The value at a dot path into the data; undefined when any step is missing. */
export function valueAt(data: unknown, path: readonly string[]): unknown {
  let at: unknown = data;
  for (const step of path) {
    if (Array.isArray(at) && /^(0|[1-9][0-9]*)$/.test(step)) at = at[Number(step)];
    else if (at !== null && typeof at === 'object' && !Array.isArray(at) && !isLosslessNumber(at)) at = (at as Record<string, unknown>)[step];
    else return undefined;
  }
  return at;
}

const INTEGER = /^-?(0|[1-9][0-9]*)$/;
const DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** Describes a JSON value in a reason, short. */
function shown(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : toJsonText(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function numberText(value: unknown): string | null {
  if (isLosslessNumber(value)) return (value as LosslessNumber).value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

/** Converts one JSON value (absent is undefined) into the parameter for `column`; throws ValueError. */
export function toColumnValue(column: ColumnSchema, value: unknown): unknown {
  if (value === undefined || value === null) {
    if (!column.nullable) throw new ValueError(column.name, 'is NOT NULL, and the message has no value for it');
    return null;
  }
  const fail = (expects: string) => new ValueError(column.name, `expects ${expects} (${column.sqlType}), got ${shown(value)}`);
  switch (column.kind) {
    case 'integer': {
      if (typeof value === 'boolean' && column.range?.max === 127n && column.sqlType.startsWith('tinyint(1)')) return value ? 1 : 0;
      const text = numberText(value) ?? (typeof value === 'string' ? value : null);
      if (text === null || !INTEGER.test(text)) throw fail('an integer');
      if (column.range && (BigInt(text) < column.range.min || BigInt(text) > column.range.max)) {
        throw new ValueError(column.name, `${text} is out of range for ${column.sqlType} (${column.range.min} to ${column.range.max})`);
      }
      return text;
    }
    case 'decimal': {
      const text = numberText(value) ?? (typeof value === 'string' ? value : null);
      if (text === null || !DECIMAL.test(text)) throw fail('a decimal number written without an exponent');
      const [whole, fraction = ''] = text.replace(/^-/, '').split('.');
      const digitsAfter = fraction.replace(/0+$/, '').length;
      if (column.scale !== null && digitsAfter > column.scale) {
        throw new ValueError(column.name, `${text} has ${digitsAfter} digits after the point; ${column.sqlType} keeps ${column.scale}, and rounding would change the value`);
      }
      if (column.precision !== null && whole!.replace(/^0+/, '').length > column.precision - (column.scale ?? 0)) {
        throw new ValueError(column.name, `${text} has too many digits for ${column.sqlType}`);
      }
      return text;
    }
    case 'float': {
      const text = numberText(value) ?? (typeof value === 'string' && DECIMAL.test(value) ? value : null);
      if (text === null || !Number.isFinite(Number(text))) throw fail('a number');
      return Number(text);
    }
    case 'text': {
      const text = typeof value === 'string' ? value : numberText(value);
      if (text === null) throw fail('a string');
      if (column.maxLength !== null) {
        const length = [...text].length;
        if (length > column.maxLength) throw new ValueError(column.name, `is ${length} characters long; ${column.sqlType} holds ${column.maxLength}`);
      }
      return text;
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw fail('true or false');
      return value;
    case 'date': {
      const match = typeof value === 'string' ? DATE.exec(value) : null;
      if (!match || !isCalendarDate(+match[1]!, +match[2]!, +match[3]!)) throw fail('a date as YYYY-MM-DD');
      return value;
    }
    case 'timestamp': {
      const utc = typeof value === 'string' ? toUtc(value) : null;
      if (utc === null) throw fail('an ISO 8601 date and time, such as 2026-01-31T12:00:00Z');
      return column.takesOffset ? `${utc}+00:00` : utc;
    }
    case 'json':
      return toJsonText(value);
    case 'other':
      if (typeof value === 'string' || typeof value === 'boolean') return value;
      return numberText(value) ?? toJsonText(value);
  }
}

function isCalendarDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * An ISO 8601 date-time as its UTC wall-clock time, `YYYY-MM-DD HH:MM:SS[.ffffff]`. A time without an
 * offset is taken as UTC; a date alone is midnight. Digits past microseconds are cut, as both engines keep
 * at most six.
 */
function toUtc(text: string): string | null {
  const m = TIMESTAMP.exec(text.trim());
  if (!m) return null;
  const [year, month, day, hour = 0, minute = 0, second = 0] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((part) => (part === undefined ? undefined : Number(part))) as number[];
  if (!isCalendarDate(year!, month!, day!) || hour > 23 || minute > 59 || second > 59) return null;
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone && zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2) || '0');
    if (hours > 23 || minutes > 59) return null;
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  const at = new Date(Date.UTC(year!, month! - 1, day!, hour, minute, second) - offsetMinutes * 60_000);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const fraction = m[7] ? `.${m[7].slice(0, 6)}` : '';
  return `${pad(at.getUTCFullYear(), 4)}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())} ${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}${fraction}`;
}

/**
 * The message key into the key columns: one column takes the key itself, several take the items of the
 * key read as a JSON array (`["eu","42"]`). Throws ValueError naming the key column.
 */
export function keyValues(columns: readonly ColumnSchema[], key: string): unknown[] {
  if (columns.length === 1) return [keyValue(columns[0]!, key, key)];
  let items: unknown;
  try {
    items = parse(key);
  } catch {
    items = null;
  }
  if (!Array.isArray(items) || items.length !== columns.length) {
    throw new ValueError(columns.map((c) => c.name).join(', '), `the key ${JSON.stringify(key)} must be a JSON array of ${columns.length} values, one per key column`);
  }
  return columns.map((column, i) => keyValue(column, items[i], key));
}

function keyValue(column: ColumnSchema, value: unknown, key: string): unknown {
  if (value === null || typeof value === 'object' && !isLosslessNumber(value)) {
    throw new ValueError(column.name, `the key ${JSON.stringify(key)} gives no plain value for this key column`);
  }
  try {
    return toColumnValue({ ...column, nullable: false }, value);
  } catch (err) {
    if (err instanceof ValueError) throw new ValueError(column.name, `the key ${JSON.stringify(key)} does not fit this key column: ${err.reason}`);
    throw err;
  }
}
