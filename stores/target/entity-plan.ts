/**
 * An entity's mapping held against its table's live schema: which columns it writes and how. Every name
 * the mapping gives must be a column there; the key must be the table's primary or a unique key; a NOT
 * NULL column without a default that nothing fills would refuse every row, so it is refused first.
 */
import type { RowWrite, TableSchema } from './engine';
import { TargetsError, type EntityMapping } from './mapping';
import { keyValues, toColumnValue, valueAt, type ColumnSchema } from './values';

export interface EntityPlan {
  mapping: EntityMapping;
  /** As the database names it. */
  table: string;
  keyColumns: ColumnSchema[];
  written: { column: ColumnSchema; path: string[] }[];
  softDelete: ColumnSchema | null;
}

/** Builds the plan, or throws TargetsError with one line naming the entity, the table and the column. */
export function planEntity(mapping: EntityMapping, schema: TableSchema | null, where: string): EntityPlan {
  const at = `entity "${mapping.entity}" → ${where} table ${mapping.table}`;
  if (!schema) throw new TargetsError(`${at}: the table does not exist`);
  const column = (name: string, role: string): ColumnSchema => {
    const found = schema.columns.get(name) ?? (schema.caseInsensitive ? [...schema.columns.values()].find((c) => c.name.toLowerCase() === name.toLowerCase()) : undefined);
    if (!found) {
      const near = [...schema.columns.keys()].find((c) => c.toLowerCase() === name.toLowerCase());
      throw new TargetsError(`${at}: ${role} ${name} is not a column of the table${near ? ` (there is ${near}; names are case-sensitive)` : ''}`);
    }
    if (found.generated) throw new TargetsError(`${at}: ${role} ${found.name} is a generated column, which cannot be written`);
    return found;
  };
  const keyColumns = mapping.keyColumns.map((name) => column(name, 'key column'));
  const keyNames = new Set(keyColumns.map((c) => c.name));
  const unique = schema.uniqueKeys.some((key) => key.length === keyNames.size && key.every((name) => keyNames.has(name)));
  if (!unique) {
    throw new TargetsError(`${at}: the key (${keyColumns.map((c) => c.name).join(', ')}) is not the table's primary key nor a unique key, so a row cannot be found by it`);
  }
  const softDelete = mapping.onDelete.kind === 'softDelete' ? column(mapping.onDelete.column, 'soft-delete column') : null;
  if (softDelete && softDelete.kind !== 'timestamp' && softDelete.kind !== 'date') {
    throw new TargetsError(`${at}: soft-delete column ${softDelete.name} is ${softDelete.sqlType}; it must be a date or timestamp column, set to the delete's time`);
  }
  if (softDelete && !softDelete.nullable) throw new TargetsError(`${at}: soft-delete column ${softDelete.name} is NOT NULL; an upsert clears it, so it must take NULL`);
  const written = mapping.columns
    ? mapping.columns.map(({ column: name, path }) => ({ column: column(name, 'column'), path }))
    : [...schema.columns.values()].filter((c) => !keyNames.has(c.name) && c !== softDelete && !c.generated).map((c) => ({ column: c, path: [c.name] }));
  const filled = new Set([...keyNames, ...written.map((w) => w.column.name)]);
  const missing = [...schema.required].find((name) => !filled.has(name) && name !== softDelete?.name);
  if (missing) throw new TargetsError(`${at}: column ${missing} is NOT NULL without a default, and the mapping gives it no value`);
  return { mapping, table: schema.name, keyColumns, written, softDelete };
}

/** What one message writes, converted for the columns; throws ValueError for a value that does not fit. */
export function rowWrite(
  plan: EntityPlan,
  message: { entity: string; key: string; version: string; messageId: number; op: 'upsert' | 'delete'; data: unknown; deletedAt: string },
): RowWrite {
  const base = {
    entity: message.entity,
    key: message.key,
    version: message.version,
    messageId: message.messageId,
    table: plan.table,
    keyColumns: plan.keyColumns.map((c) => c.name),
    keyValues: keyValues(plan.keyColumns, message.key),
  };
  if (message.op === 'delete') {
    if (!plan.softDelete) return { ...base, effect: { kind: 'delete' } };
    return { ...base, effect: { kind: 'softDelete', column: plan.softDelete.name, value: toColumnValue(plan.softDelete, message.deletedAt) } };
  }
  const columns = plan.written.map((w) => w.column.name);
  const values = plan.written.map((w) => toColumnValue(w.column, valueAt(message.data, w.path)));
  if (plan.softDelete) {
    columns.push(plan.softDelete.name);
    values.push(null);
  }
  return { ...base, effect: { kind: 'upsert', columns, values } };
}
