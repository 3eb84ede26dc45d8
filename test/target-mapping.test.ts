/** The mapping file and the value conversions on their own: no database, no Temporal. */
import assert from 'node:assert/strict';
import { parseTargetsMapping, TargetsError } from '../stores/target/mapping';
import { keyValues, parseData, toColumnValue, ValueError, type ColumnSchema } from '../stores/target/values';
import { loadConfig, ConfigError } from '../config/config';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DATABASES = { reporting: 'mysql://sync@db.internal:3306/reporting', warehouse: { env: 'WAREHOUSE_DATABASE_URL' } };
const ENV = { WAREHOUSE_DATABASE_URL: 'postgres://sync@wh.internal/warehouse' };

function refused(entities: Record<string, unknown>, databases: Record<string, unknown> = DATABASES, env: NodeJS.ProcessEnv = ENV): string {
  try {
    parseTargetsMapping({ databases, entities }, env);
  } catch (err) {
    assert.ok(err instanceof TargetsError, String(err));
    assert.equal(err.message.split('\n').length, 1);
    return err.message;
  }
  assert.fail('the mapping was accepted');
}

const column = (kind: ColumnSchema['kind'], extra: Partial<ColumnSchema> = {}): ColumnSchema => ({
  name: 'c',
  kind,
  sqlType: kind,
  nullable: true,
  generated: false,
  maxLength: null,
  precision: null,
  scale: null,
  range: null,
  takesOffset: false,
  ...extra,
});

function misfit(schema: ColumnSchema, value: unknown): string {
  try {
    toColumnValue(schema, value);
  } catch (err) {
    assert.ok(err instanceof ValueError, String(err));
    return err.message;
  }
  assert.fail(`${JSON.stringify(value)} was accepted`);
}

describe('the targets mapping file', () => {
  it("reads DESIGN's example: databases by URL and by environment variable, keys, columns, soft deletes", () => {
    const mapping = parseTargetsMapping(
      {
        databases: DATABASES,
        entities: {
          order: { database: 'reporting', table: 'orders', key: 'id', columns: { total_cents: 'total', customer_id: 'customer.id' } },
          customer: { database: 'warehouse', table: 'crm.customers', key: ['region', 'id'], onDelete: { softDelete: 'deleted_at' } },
        },
      },
      ENV,
    );
    assert.deepEqual(mapping.databases.get('reporting'), { name: 'reporting', engine: 'mysql', url: DATABASES.reporting, env: null });
    assert.equal(mapping.databases.get('warehouse')!.engine, 'postgres');
    assert.equal(mapping.databases.get('warehouse')!.url, ENV.WAREHOUSE_DATABASE_URL);
    assert.equal(mapping.databases.get('warehouse')!.env, 'WAREHOUSE_DATABASE_URL');
    assert.deepEqual(mapping.entities.get('order')!.columns, [
      { column: 'total_cents', path: ['total'] },
      { column: 'customer_id', path: ['customer', 'id'] },
    ]);
    assert.deepEqual(mapping.entities.get('order')!.onDelete, { kind: 'delete' });
    assert.deepEqual(mapping.entities.get('customer')!.keyColumns, ['region', 'id']);
    assert.equal(mapping.entities.get('customer')!.columns, null, 'no columns: by name');
    assert.deepEqual(mapping.entities.get('customer')!.onDelete, { kind: 'softDelete', column: 'deleted_at' });
  });

  it('refuses hostile or malformed identifiers, naming the entity', () => {
    assert.match(refused({ order: { database: 'reporting', table: 'orders; DROP TABLE x', key: 'id' } }), /entity "order": "table" must be a plain identifier/);
    assert.match(refused({ order: { database: 'reporting', table: 'orders', key: 'id"--' } }), /entity "order": "key" must be a plain identifier/);
    assert.match(refused({ order: { database: 'reporting', table: 'orders', key: 'id', columns: { 'a`b': 'x' } } }), /entity "order": a column name must be a plain identifier/);
    assert.match(refused({ order: { database: 'reporting', table: 'a.b.c', key: 'id' } }), /"table" must be a plain identifier, or schema.table/);
    assert.match(refused({ order: { database: 'reporting', table: 'orders', key: 'id', onDelete: { softDelete: 'x y' } } }), /"softDelete" must be a plain identifier/);
    assert.match(refused({ order: { database: 'reporting', table: 'orders', key: ['1id'] } }), /each key column must be a plain identifier/);
  });

  it('refuses what cannot work, naming the entity and the column', () => {
    assert.match(refused({ order: { database: 'nowhere', table: 'orders', key: 'id' } }), /entity "order": "database" names "nowhere", which "databases" does not define/);
    assert.match(refused({ order: { database: 'reporting', table: 'orders', key: 'id', columns: { id: 'id' } } }), /column id is the key/);
    assert.match(refused({ order: { database: 'reporting', table: 'orders', key: ['id', 'id'] } }), /key column id is named twice/);
    assert.match(
      refused({ a: { database: 'reporting', table: 'orders', key: 'id' }, b: { database: 'reporting', table: 'orders', key: 'id' } }),
      /entity "b": table orders in "reporting" is already the table of entity "a"/,
    );
    assert.match(refused({ order: { database: 'reporting', table: 'orders', key: 'id', extra: 1 } }), /entity "order"/);
    assert.match(refused({}, { w: { env: 'UNSET_VARIABLE' } }, {}), /database "w": the environment variable UNSET_VARIABLE is not set/);
    assert.match(refused({}, { w: 'sqlite:///tmp/x' }), /database "w": the URL must start with postgres:\/\/, postgresql:\/\/, mysql:\/\/ or mariadb:\/\//);
  });

  it('is read with the settings: a bad file stops the process as a bad setting does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'targets-'));
    try {
      const file = join(dir, 'targets.json');
      writeFileSync(file, '{"databases": {}, "entities": {"order": {"database": "x", "table": "t", "key": "id"}}}');
      assert.throws(() => loadConfig({ OUTBOX_SYNC_TARGETS: file }), (err: Error) => err instanceof ConfigError && /^OUTBOX_SYNC_TARGETS \(.*\): entity "order": "database" names "x"/.test(err.message));
      writeFileSync(file, '{not json');
      assert.throws(() => loadConfig({ OUTBOX_SYNC_TARGETS: file }), /OUTBOX_SYNC_TARGETS: .* is not valid JSON/);
      assert.throws(() => loadConfig({ OUTBOX_SYNC_TARGETS: join(dir, 'missing.json') }), /OUTBOX_SYNC_TARGETS: is not a readable file/);
      assert.equal(loadConfig({}).targets, null, 'unset: every entity goes to synced_records');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('JSON values into column types', () => {
  const bigint = column('integer', { sqlType: 'bigint', range: { min: -(2n ** 63n), max: 2n ** 63n - 1n } });

  it('keeps integers past 2^53 and decimals exact, from numbers or strings', () => {
    const data = parseData('{"n": 9007199254740993, "d": 12345678901234567.89}') as Record<string, unknown>;
    assert.equal(toColumnValue(bigint, data.n), '9007199254740993');
    assert.equal(toColumnValue(bigint, '-9223372036854775808'), '-9223372036854775808');
    assert.equal(toColumnValue(column('decimal', { precision: 19, scale: 2 }), data.d), '12345678901234567.89');
    assert.equal(toColumnValue(column('decimal', { precision: 5, scale: 2 }), '1.50'), '1.50', 'trailing zeros are not digits lost');
    assert.match(misfit(bigint, '9223372036854775808'), /out of range for bigint/);
    assert.match(misfit(bigint, 1.5), /expects an integer/);
    assert.match(misfit(bigint, true), /expects an integer/);
    assert.match(misfit(column('decimal', { precision: 5, scale: 2 }), '1.005'), /3 digits after the point; .* keeps 2, and rounding would change the value/);
    assert.match(misfit(column('decimal', { precision: 5, scale: 2 }), '1234.5'), /too many digits/);
    assert.match(misfit(column('decimal'), '1e5'), /without an exponent/);
  });

  it('checks text length in characters, booleans, dates and times with their zones', () => {
    const varchar = column('text', { sqlType: 'varchar(3)', maxLength: 3 });
    assert.equal(toColumnValue(varchar, 'été'), 'été');
    assert.equal(toColumnValue(varchar, 42), '42', 'a number into text is its digits');
    assert.match(misfit(varchar, 'four'), /is 4 characters long; varchar\(3\) holds 3/);
    assert.match(misfit(varchar, { a: 1 }), /expects a string/);
    assert.equal(toColumnValue(column('boolean'), false), false);
    assert.match(misfit(column('boolean'), 'yes'), /expects true or false/);
    assert.equal(toColumnValue(column('integer', { sqlType: 'tinyint(1)', range: { min: -128n, max: 127n } }), true), 1, "MySQL's BOOLEAN");
    assert.equal(toColumnValue(column('date'), '2024-02-29'), '2024-02-29');
    assert.match(misfit(column('date'), '2023-02-29'), /expects a date as YYYY-MM-DD/);
    const timestamptz = column('timestamp', { takesOffset: true });
    assert.equal(toColumnValue(timestamptz, '2026-01-01T00:30:00+01:00'), '2025-12-31 23:30:00+00:00');
    assert.equal(toColumnValue(column('timestamp'), '2026-06-30T22:00:00.1234567-02:30'), '2026-07-01 00:30:00.123456', 'wall clock in UTC, microseconds kept');
    assert.equal(toColumnValue(column('timestamp'), '2026-06-30T22:00:00'), '2026-06-30 22:00:00', 'no offset is UTC');
    assert.match(misfit(column('timestamp'), '2026-13-01T00:00:00Z'), /expects an ISO 8601 date and time/);
    assert.match(misfit(column('timestamp'), 1767225600), /expects an ISO 8601 date and time/);
  });

  it('writes NULL for a missing value, refused by a NOT NULL column; JSON columns take any value', () => {
    assert.equal(toColumnValue(column('text'), undefined), null);
    assert.match(misfit(column('text', { nullable: false }), null), /column c: is NOT NULL, and the message has no value for it/);
    assert.equal(toColumnValue(column('json'), parseData('{"n": 12345678901234567890, "a": [1]}')), '{"n":12345678901234567890,"a":[1]}');
  });

  it('fills composite keys from a JSON array, and names the key column a key does not fit', () => {
    const region = column('text', { name: 'region', maxLength: 2, sqlType: 'varchar(2)' });
    const id = { ...bigint, name: 'id' };
    assert.deepEqual(keyValues([region, id], '["eu", 42]'), ['eu', '42']);
    assert.deepEqual(keyValues([id], '42'), ['42']);
    assert.throws(() => keyValues([id], 'x'), /column id: the key "x" does not fit this key column: expects an integer/);
    assert.throws(() => keyValues([region, id], '["eu"]'), /must be a JSON array of 2 values/);
    assert.throws(() => keyValues([region, id], 'eu,42'), /must be a JSON array of 2 values/);
    assert.throws(() => keyValues([region, id], '["europe", 1]'), /column region: .*is 6 characters long/);
  });
});
