/**
 * Sync into the user's own tables, on both engines: the real pipeline (worker, dispatcher, Temporal, Redis)
 * writing into tables a user made in PostgreSQL and in MariaDB, as the mapping file tells it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registry } from '../observability/metrics';
import { enqueue, enqueueBatch } from '../stores/outbox/enqueue';
import type { Queryable } from '../stores/postgres/queryable';
import { Targets } from '../stores/target/targets';
import { buildIngestServer } from '../servers/ingest/ingest-server';
import { buildUiServer } from '../servers/ui/ui-server';
import { TestPipeline } from './support/pipeline';
import { runCli, spawnCli } from './support/processes';
import { packageRoot } from '../config/package-root';
import { getStack } from './support/stack';
import type { UserDatabases } from './support/user-databases';

const POSTGRES_TABLES = `
  CREATE TABLE orders (
    id bigint PRIMARY KEY,
    total_cents bigint NOT NULL,
    status varchar(20),
    customer_id integer,
    note text,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
  );
  CREATE TABLE stock (region text, sku text, qty integer NOT NULL CHECK (qty >= 0), PRIMARY KEY (region, sku));
  CREATE TABLE kinds (
    id text PRIMARY KEY, big bigint, amount numeric(12,2), label varchar(5), flag boolean, day date,
    at timestamptz, wall timestamp, doc jsonb, ratio double precision
  );
  CREATE TABLE coupons (id integer PRIMARY KEY, code varchar(10) NOT NULL UNIQUE);`;

const MYSQL_TABLES = `
  CREATE TABLE orders (
    id bigint PRIMARY KEY,
    total_cents bigint NOT NULL,
    status varchar(20),
    customer_id int,
    note text,
    loaded_at datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    deleted_at datetime(6) NULL
  );
  CREATE TABLE stock (region varchar(10), sku varchar(20), qty int NOT NULL CHECK (qty >= 0), PRIMARY KEY (region, sku));
  CREATE TABLE kinds (
    id varchar(100) PRIMARY KEY, big bigint, amount decimal(12,2), label varchar(5), flag boolean, day date,
    at timestamp(6) NULL, wall datetime(6), doc json, ratio double, memo text
  );
  CREATE TABLE coupons (id int PRIMARY KEY, code varchar(10) NOT NULL UNIQUE);`;

const ENGINES = ['postgres', 'mysql'] as const;
type EngineName = (typeof ENGINES)[number];

/** Each engine's entities: order_<engine>, stock_<engine>, kind_<engine>. */
function mapping(urls: { postgres: string; mysql: string }) {
  const entities: Record<string, unknown> = {};
  for (const engine of ENGINES) {
    entities[`order_${engine}`] = {
      database: engine,
      table: 'orders',
      key: 'id',
      columns: { total_cents: 'total', status: 'status', customer_id: 'customer.id' },
      onDelete: { softDelete: 'deleted_at' },
    };
    entities[`stock_${engine}`] = { database: engine, table: 'stock', key: ['region', 'sku'] };
    entities[`kind_${engine}`] = { database: engine, table: 'kinds', key: 'id' };
    entities[`coupon_${engine}`] = { database: engine, table: 'coupons', key: 'id' };
  }
  return { databases: { postgres: urls.postgres, mysql: urls.mysql }, entities };
}

/** Rows of the user's table, through the user's own connection. */
function userRows(user: UserDatabases, engine: EngineName, sql: string, params: unknown[] = []): Promise<Record<string, any>[]> {
  return engine === 'postgres' ? user.postgres(sql.replace(/\?/g, (_, i: number) => `$${sql.slice(0, i).split('?').length}`), params) : user.mysql(sql, params);
}

/** A message stored with plain SQL, as producers in any language may: the data's JSON text is kept as written. */
async function insertRaw(outbox: Queryable, entity: string, key: string, version: number, dataJson: string): Promise<number> {
  const { rows } = await outbox.query(`INSERT INTO outbox_messages (entity, entity_key, op, version, data) VALUES ($1, $2, 'upsert', $3, $4::jsonb) RETURNING id`, [
    entity,
    key,
    version,
    dataJson,
  ]);
  return Number(rows[0].id);
}

describe("the user's own tables, in PostgreSQL and MariaDB", function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let user: UserDatabases;
  let targets: Targets;

  before(async () => {
    pipeline = await TestPipeline.create({ userTables: { postgres: POSTGRES_TABLES, mysql: MYSQL_TABLES, mapping } });
    user = pipeline.user!;
    targets = pipeline.stores.targets;
    await pipeline.startWorker({ metrics: true });
    pipeline.startDispatcher();
  });

  after(async () => {
    await pipeline?.close();
  });

  async function sync(messages: Parameters<typeof enqueueBatch>[1]) {
    const ids = await enqueueBatch(pipeline.stores.outbox, messages);
    return pipeline.waitForStatus(ids, ['completed', 'dead']);
  }

  for (const engine of ENGINES) {
    describe(`on ${engine === 'postgres' ? 'PostgreSQL' : 'MariaDB'}`, () => {
      const order = `order_${engine}`;
      const stock = `stock_${engine}`;
      const kind = `kind_${engine}`;

      it('writes mapped upserts and deletes into the table, leaving unmapped columns alone', async () => {
        const [first] = await sync([{ entity: order, key: '1', version: 1, data: { total: 1250, status: 'new', customer: { id: 7 }, unmapped: 'ignored' } }]);
        assert.equal(first!.status, 'completed', first!.lastError ?? '');
        let [row] = await userRows(user, engine, 'SELECT total_cents, status, customer_id, note, deleted_at, loaded_at FROM orders WHERE id = 1');
        assert.equal(String(row!.total_cents), '1250');
        assert.equal(row!.status, 'new');
        assert.equal(Number(row!.customer_id), 7);
        assert.ok(row!.loaded_at, 'the column nothing maps keeps its default');
        const loadedAt = String(row!.loaded_at);
        await userRows(user, engine, "UPDATE orders SET note = 'written by hand' WHERE id = 1");

        await sync([{ entity: order, key: '1', version: 2, data: { total: 1300, status: 'paid' } }]);
        [row] = await userRows(user, engine, 'SELECT total_cents, status, customer_id, note, loaded_at FROM orders WHERE id = 1');
        assert.deepEqual(
          { total: String(row!.total_cents), status: row!.status, customer: row!.customer_id, note: row!.note, loadedAt: String(row!.loaded_at) },
          { total: '1300', status: 'paid', customer: null, note: 'written by hand', loadedAt },
          'a field the message lacks writes NULL; columns nothing maps are untouched',
        );

        await sync([{ entity: order, key: '1', version: 3, op: 'delete' }]);
        [row] = await userRows(user, engine, 'SELECT deleted_at, note FROM orders WHERE id = 1');
        assert.ok(row!.deleted_at, 'a soft delete sets the column');
        assert.equal(row!.note, 'written by hand');
        await sync([{ entity: order, key: '1', version: 4, data: { total: 1, status: 'back' } }]);
        [row] = await userRows(user, engine, 'SELECT deleted_at, status FROM orders WHERE id = 1');
        assert.deepEqual({ deletedAt: row!.deleted_at, status: row!.status }, { deletedAt: null, status: 'back' }, 'a newer upsert clears the soft delete');

        await sync([{ entity: stock, key: '["eu","A-1"]', version: 1, data: { qty: 5 } }]);
        assert.deepEqual((await userRows(user, engine, "SELECT qty FROM stock WHERE region = 'eu' AND sku = 'A-1'")).map((r) => Number(r.qty)), [5]);
        await sync([{ entity: stock, key: '["eu","A-1"]', version: 2, op: 'delete' }]);
        assert.equal((await userRows(user, engine, "SELECT qty FROM stock WHERE region = 'eu' AND sku = 'A-1'")).length, 0, 'a delete removes the row');
      });

      it('keeps the newest version: out of order, a delete before an older upsert, 50 versions of one key at once', async () => {
        const [newer, older] = await sync([
          { entity: order, key: '2', version: 5, data: { total: 500 } },
          { entity: order, key: '2', version: 3, data: { total: 300 } },
        ]);
        assert.deepEqual([newer!.status, older!.status], ['completed', 'completed']);
        assert.deepEqual((await userRows(user, engine, 'SELECT total_cents FROM orders WHERE id = 2')).map((r) => String(r.total_cents)), ['500']);

        await sync([{ entity: stock, key: '["eu","B"]', version: 10, op: 'delete' }]);
        await sync([{ entity: stock, key: '["eu","B"]', version: 9, data: { qty: 9 } }]);
        assert.equal((await userRows(user, engine, "SELECT qty FROM stock WHERE sku = 'B'")).length, 0, 'an older upsert does not bring back a deleted row');

        // Straight at the target, so that the 50 transactions really overlap; versions in a shuffled order.
        const versions = Array.from({ length: 50 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
        const results = await Promise.all(
          versions.map((v) => targets.write({ entity: order, key: '3', version: String(v), messageId: v, op: 'upsert', dataText: JSON.stringify({ total: v * 100 }), deletedAt: new Date() })),
        );
        assert.ok(results.includes(true));
        assert.deepEqual((await userRows(user, engine, 'SELECT total_cents FROM orders WHERE id = 3')).map((r) => String(r.total_cents)), ['5000']);

        // Many keys at once, several versions each: no deadlock across keys, each ends at its newest.
        const writes = [];
        for (let k = 10; k < 30; k++) {
          for (const v of [3, 1, 4, 2, 5]) {
            writes.push(targets.write({ entity: order, key: String(k), version: String(v), messageId: k * 10 + v, op: 'upsert', dataText: `{"total":${k * 10 + v}}`, deletedAt: new Date() }));
          }
        }
        await Promise.all(writes);
        const rows = await userRows(user, engine, 'SELECT id, total_cents FROM orders WHERE id >= 10 AND id < 30 ORDER BY id');
        assert.deepEqual(
          rows.map((r) => [Number(r.id), Number(r.total_cents)]),
          Array.from({ length: 20 }, (_, i) => [i + 10, (i + 10) * 10 + 5]),
        );
      });

      it('converts each JSON value to its column type, exactly', async () => {
        // Written with plain SQL: the JSON text's integers past 2^53 survive only if nothing parses them into a double.
        const data =
          '{"big": 9007199254740993, "amount": "12345.67", "label": "abcdé", "flag": true, "day": "2026-02-28",' +
          ' "at": "2026-03-01T01:30:00+02:00", "wall": "2026-03-01T01:30:00.123456+02:00",' +
          ' "doc": {"n": 12345678901234567890, "list": [1, "two", null]}, "ratio": 0.25}';
        const ids = [await insertRaw(pipeline.stores.outbox, kind, 'exact', 1, data), await insertRaw(pipeline.stores.outbox, kind, 'strings', 1, '{"big": "-9223372036854775808", "amount": 0.1}')];
        const done = await pipeline.waitForStatus(ids, ['completed', 'dead']);
        assert.deepEqual(
          done.map((m) => m.status),
          ['completed', 'completed'],
          done.map((m) => m.lastError).join('; '),
        );
        const sql =
          engine === 'postgres'
            ? `SELECT big::text AS big, amount::text AS amount, label, flag, day::text AS day, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at,
                      wall::text AS wall, doc->>'n' AS n, doc->'list' AS list, ratio FROM kinds WHERE id = ?`
            : `SELECT CAST(big AS CHAR) AS big, CAST(amount AS CHAR) AS amount, label, flag, CAST(day AS CHAR) AS day, CAST(UNIX_TIMESTAMP(at) AS CHAR) AS at_epoch,
                      CAST(wall AS CHAR) AS wall, JSON_UNQUOTE(JSON_EXTRACT(doc, '$.n')) AS n, JSON_EXTRACT(doc, '$.list') AS list, ratio FROM kinds WHERE id = ?`;
        const [row] = await userRows(user, engine, sql, ['exact']);
        assert.equal(row!.big, '9007199254740993');
        assert.equal(row!.amount, '12345.67');
        assert.equal(row!.label, 'abcdé', 'five characters fit varchar(5), whatever their bytes');
        assert.equal(Boolean(row!.flag), true);
        assert.equal(row!.day, '2026-02-28');
        if (engine === 'postgres') assert.equal(row!.at, '2026-02-28 23:30:00', 'the offset is applied: the instant is right');
        else assert.equal(row!.at_epoch, String(Date.parse('2026-02-28T23:30:00Z') / 1000) + '.000000', 'the offset is applied: the instant is right');
        assert.equal(row!.wall, '2026-02-28 23:30:00.123456', 'a column without a zone holds the UTC time');
        assert.equal(row!.n, '12345678901234567890');
        assert.deepEqual(typeof row!.list === 'string' ? JSON.parse(row!.list) : row!.list, [1, 'two', null]);
        assert.equal(Number(row!.ratio), 0.25);
        const [strings] = await userRows(user, engine, engine === 'postgres' ? 'SELECT big::text AS big, amount::text AS amount FROM kinds WHERE id = ?' : 'SELECT CAST(big AS CHAR) AS big, CAST(amount AS CHAR) AS amount FROM kinds WHERE id = ?', ['strings']);
        assert.deepEqual({ ...strings }, { big: '-9223372036854775808', amount: '0.10' });
      });

      it('keeps integers past 2^53 exact from every way in: the library (BigInt), the CLI and POST /v1/messages', async () => {
        const token = 'press-token-0123456789';
        const ids = [await enqueue(pipeline.stores.outbox, { entity: kind, key: 'big-library', data: { big: 9007199254740993n } })];
        const cli = await runCli(['enqueue', '--entity', kind, '--key', 'big-cli', '--data', '{"big": 9223372036854775807, "doc": {"n": 12345678901234567891}}'], pipeline.processEnv());
        assert.equal(cli.code, 0, cli.stderr);
        ids.push(Number(cli.stdout.trim()));
        const ingest = buildIngestServer({ outbox: pipeline.stores.outbox }, { ...pipeline.config, ingestTokens: [{ name: 'press', token }] });
        try {
          const posted = await ingest.inject({
            method: 'POST',
            url: '/v1/messages',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            payload: `{"entity": "${kind}", "key": "big-http", "data": {"big": -9223372036854775808, "ratio": 0.5}}`,
          });
          assert.equal(posted.statusCode, 202, posted.body);
          ids.push(posted.json().id);
          const twice = await ingest.inject({
            method: 'POST',
            url: '/v1/messages',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            payload: `{"entity": "${kind}", "key": "big-twice", "data": {"big": 12345678901234567891, "big": 1}}`,
          });
          assert.equal(twice.statusCode, 400, 'a key given twice with two values is ambiguous once numbers are exact');
          assert.match(twice.json().error, /^the body is not valid JSON: Duplicate key 'big'/);
        } finally {
          await ingest.close();
        }
        const done = await pipeline.waitForStatus(ids, ['completed', 'dead']);
        assert.deepEqual(done.map((m) => m.status), ['completed', 'completed', 'completed'], done.map((m) => m.lastError).join('; '));
        const sql =
          engine === 'postgres'
            ? "SELECT id, big::text AS big, doc->>'n' AS n FROM kinds WHERE id LIKE 'big-%' ORDER BY id"
            : "SELECT id, CAST(big AS CHAR) AS big, JSON_UNQUOTE(JSON_EXTRACT(doc, '$.n')) AS n FROM kinds WHERE id LIKE 'big-%' ORDER BY id";
        assert.deepEqual(
          (await userRows(user, engine, sql)).map((r) => ({ ...r })),
          [
            { id: 'big-cli', big: '9223372036854775807', n: '12345678901234567891' },
            { id: 'big-http', big: '-9223372036854775808', n: null },
            { id: 'big-library', big: '9007199254740993', n: null },
          ],
        );
      });

      it('fails a value that does not fit, that message alone, naming the column; the others flow', async () => {
        const messages = [
          { entity: kind, key: 'bad-int', data: { big: 'twelve' } },
          { entity: kind, key: 'too-long', data: { label: 'abcdef' } },
          { entity: kind, key: 'bad-date', data: { day: '2026-02-30' } },
          { entity: kind, key: 'rounding', data: { amount: '1.005' } },
          { entity: order, key: '40', data: { status: 'no total' } },
          { entity: stock, key: '["eu","C"]', data: { qty: -1 } },
          { entity: order, key: 'forty', data: { total: 1 } },
          { entity: kind, key: 'fine', data: { big: 1, label: 'ok' } },
        ];
        const done = await sync(messages);
        const outcome = Object.fromEntries(done.map((m) => [m.key, { status: m.status, error: m.lastError ?? '' }]));
        assert.equal(outcome.fine!.status, 'completed', outcome.fine!.error);
        for (const [key, column] of [
          ['bad-int', 'big'],
          ['too-long', 'label'],
          ['bad-date', 'day'],
          ['rounding', 'amount'],
          ['40', 'total_cents'],
          ['forty', 'id'],
        ]) {
          assert.equal(outcome[key]!.status, 'dead', `${key}: ${outcome[key]!.error}`);
          assert.match(outcome[key]!.error, new RegExp(`TargetRejected: .*entity "${key === '40' || key === 'forty' ? order : kind}" → ${engine} table (orders|kinds).*column ${column}\\b`), key);
        }
        // A CHECK constraint is the database's to judge: its own words come back.
        assert.equal(outcome['["eu","C"]']!.status, 'dead');
        assert.match(outcome['["eu","C"]']!.error, engine === 'postgres' ? /the database refused the row: .*check constraint/ : /the database refused the row: .*CONSTRAINT .* failed/);
        const executions = done.filter((m) => m.status === 'dead').map((m) => m.executions);
        assert.ok(executions.every((n) => n === 1), 'a permanent misfit is not executed again');
      });

      it("refuses a row that clashes with another on a second unique key, leaving the other row alone", async () => {
        const coupon = `coupon_${engine}`;
        const [first] = await sync([{ entity: coupon, key: '1', data: { code: 'SPRING' } }]);
        assert.equal(first!.status, 'completed', first!.lastError ?? '');
        const [clash] = await sync([{ entity: coupon, key: '2', data: { code: 'SPRING' } }]);
        assert.equal(clash!.status, 'dead');
        assert.match(clash!.lastError!, engine === 'postgres' ? /the database refused the row: duplicate key value violates unique constraint/ : /the database refused the row: Duplicate entry 'SPRING'/);
        assert.deepEqual((await userRows(user, engine, 'SELECT id, code FROM coupons ORDER BY id')).map((r) => [Number(r.id), r.code]), [[1, 'SPRING']]);
      });

      it('takes hostile keys and field names as values, never as SQL', async () => {
        const hostile = "x'); DROP TABLE stock;--";
        const done = await sync([
          { entity: stock, key: JSON.stringify(['eu', hostile.slice(0, 20)]), data: { qty: 1, 'qty"; DROP TABLE stock; --': 2 } },
          { entity: order, key: '1; DROP TABLE orders', data: { total: 1 } },
        ]);
        assert.equal(done[0]!.status, 'completed', done[0]!.lastError ?? '');
        assert.equal(done[1]!.status, 'dead');
        assert.match(done[1]!.lastError!, /does not fit this key column: expects an integer/);
        const rows = await userRows(user, engine, 'SELECT sku, qty FROM stock WHERE sku = ?', [hostile.slice(0, 20)]);
        assert.deepEqual(rows.map((r) => [r.sku, Number(r.qty)]), [[hostile.slice(0, 20), 1]]);
        assert.ok(Number((await userRows(user, engine, 'SELECT count(*) AS n FROM orders'))[0]!.n) > 0, 'the orders table is still there');
      });
    });
  }

  it('sends entities without a mapping to synced_records, as before', async () => {
    const [message] = await sync([{ entity: 'invoice', key: 'i-1', data: { total: 1 } }]);
    assert.equal(message!.status, 'completed');
    const { rows } = await pipeline.targetAdmin('SELECT data FROM synced_records WHERE entity = $1', ['invoice']);
    assert.deepEqual(rows.map((r) => r.data), [{ total: 1 }]);
  });

  it('counts outcomes by target database in the metrics', async () => {
    const outcomes = () => registry.getSingleMetric('outbox_sync_outcomes_total')!.get();
    const count = async (target: string) => (await outcomes()).values.find((v) => v.labels.status === 'completed' && v.labels.target === target)?.value ?? 0;
    const before = { mysql: await count('mysql'), postgres: await count('postgres'), fallback: await count('TARGET_DATABASE_URL') };
    await sync([
      { entity: 'order_mysql', key: '88', data: { total: 1 } },
      { entity: 'order_mysql', key: '89', data: { total: 1 } },
      { entity: 'order_postgres', key: '88', data: { total: 1 } },
      { entity: 'invoice', key: 'i-88', data: { total: 1 } },
    ]);
    assert.deepEqual(
      { mysql: (await count('mysql')) - before.mysql, postgres: (await count('postgres')) - before.postgres, fallback: (await count('TARGET_DATABASE_URL')) - before.fallback },
      { mysql: 2, postgres: 1, fallback: 1 },
    );
  });

  it("writes to MariaDB in strict mode even when the server's default is not: a too-long TEXT is refused, never cut", async () => {
    // TEXT holds 65,535 bytes; only the server knows, and a non-strict server would cut the value with a warning.
    const memo = 'x'.repeat(70_000);
    const [{ mode }] = await user.mysql<{ mode: string }>('SELECT @@GLOBAL.sql_mode AS mode');
    await user.mysql("SET GLOBAL sql_mode = ''");
    // A pool opened now: its connections start with the server's lax default.
    const fresh = new Targets(pipeline.stores.target, pipeline.config.targets, 1);
    try {
      const write = { entity: 'kind_mysql', key: 'lax-server', version: '1', messageId: 1, op: 'upsert' as const, dataText: JSON.stringify({ memo }), deletedAt: new Date() };
      await assert.rejects(fresh.write(write), (err: Error) => err.name === 'TargetRejected' && /column 'memo'/i.test(err.message) && /too long/i.test(err.message));
      assert.deepEqual(await user.mysql("SELECT id FROM kinds WHERE id = 'lax-server'"), [], 'nothing was written, cut or whole');
    } finally {
      await user.mysql('SET GLOBAL sql_mode = ?', [mode]);
      await fresh.close();
    }
  });

  it("names each message's target in inspect, GET /v1/messages/:id and the page's API", async () => {
    const token = 'press-token-0123456789';
    const [mapped, unmapped] = await sync([
      { entity: 'order_mysql', key: '77', data: { total: 1 }, source: 'press' },
      { entity: 'invoice', key: 'i-77', data: { total: 1 }, source: 'press' },
    ]);
    const inspect = await runCli(['inspect', String(mapped!.id), '--json'], pipeline.processEnv());
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.deepEqual(JSON.parse(inspect.stdout).target, { database: 'mysql', table: 'orders' });
    const text = await runCli(['inspect', String(unmapped!.id)], pipeline.processEnv());
    assert.match(text.stdout, /^target {7}TARGET_DATABASE_URL table synced_records$/m);

    const ingest = buildIngestServer({ outbox: pipeline.stores.outbox }, { ...pipeline.config, ingestTokens: [{ name: 'press', token }] });
    const ui = buildUiServer({ outbox: pipeline.stores.outbox }, { ...pipeline.config, uiTokens: [{ name: 'alice', token }] }, { logger: { info: () => undefined, warn: () => undefined, error: () => undefined } });
    try {
      const http = await ingest.inject({ url: `/v1/messages/${mapped!.id}`, headers: { authorization: `Bearer ${token}` } });
      assert.deepEqual(http.json().target, { database: 'mysql', table: 'orders' });
      const page = await ui.inject({ url: `/api/messages/${unmapped!.id}`, headers: { authorization: `Bearer ${token}` } });
      assert.deepEqual(page.json().message.target, { database: 'TARGET_DATABASE_URL', table: 'synced_records' });
    } finally {
      await ingest.close();
      await ui.close();
    }
  });

  describe('targets check, migrate and worker against the live schema', () => {
    function withMapping(name: string, entity: Record<string, unknown>): Record<string, string> {
      const file = join(getStack().dataDir, `${pipeline.name}-${name}.json`);
      writeFileSync(file, JSON.stringify({ databases: { postgres: user.postgresUrl, mysql: user.mysqlUrl }, entities: { order: entity } }));
      return { OUTBOX_SYNC_TARGETS: file };
    }

    it('prints where each entity goes and which columns it writes', async () => {
      const run = await runCli(['targets', 'check'], pipeline.processEnv());
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /entity order_mysql → mysql table orders\n {2}key: id\n {2}writes: total_cents ← data\.total, status ← data\.status, customer_id ← data\.customer\.id\n {2}on delete: sets deleted_at/);
      assert.match(run.stdout, /entity kind_postgres → postgres table kinds\n {2}key: id\n {2}writes: big ← data\.big, amount ← data\.amount/);
      assert.match(run.stdout, /every other entity → synced_records/);
    });

    for (const engine of ENGINES) {
      for (const [problem, entity, reason] of [
        ['a missing table', { database: engine, table: 'ordres', key: 'id' }, /entity "order" → database "\w+" table ordres: the table does not exist/],
        ['a missing column', { database: engine, table: 'orders', key: 'id', columns: { totl: 'total', total_cents: 'total' } }, /table orders: column totl is not a column of the table/],
        ['a key column that is not unique', { database: engine, table: 'orders', key: 'status', columns: { total_cents: 'total' } }, /table orders: the key \(status\) is not the table's primary key nor a unique key/],
      ] as const) {
        it(`refuses ${problem} on ${engine} with exit 2 and one line: targets check, migrate and worker`, async () => {
          const env = pipeline.processEnv(withMapping(`bad-${engine}-${problem.replace(/\W+/g, '-')}`, entity));
          const check = await runCli(['targets', 'check'], env);
          assert.equal(check.code, 2, check.stdout + check.stderr);
          assert.match(check.stdout, reason);
          const migrate = await runCli(['migrate', '--skip-temporal'], env);
          assert.equal(migrate.code, 2, migrate.stderr);
          assert.match(migrate.stderr, reason);
          assert.equal(migrate.stderr.trim().split('\n').length, 1, migrate.stderr);
          const worker = await runCli(['worker'], env);
          assert.equal(worker.code, 2, worker.stderr);
          assert.match(worker.stderr, reason);
        });
      }
    }
  });
});

describe('the demo', function () {
  this.timeout(120_000);
  it("npm start's demo syncs orders into tables of its own in PostgreSQL and MariaDB, and shows them", async () => {
    // An outbox of its own, with no worker but dev's: the demo makes its own tables and mapping, as on a fresh machine.
    const pipeline = await TestPipeline.create();
    const dataDir = join(getStack().dataDir, `${pipeline.name}-dev`);
    const dev = spawnCli(['dev', '--demo', '--data-dir', dataDir], pipeline.processEnv({ OUTBOX_SYNC_UI_PORT: '0' }), { cwd: packageRoot });
    try {
      await dev.waitFor(/demo messages completed/, 90_000);
      const out = dev.stdout();
      assert.match(out, /(\d+) of \1 demo messages completed/, out);
      const ordersPg = out.slice(out.indexOf('orders in PostgreSQL'), out.indexOf('orders in MariaDB'));
      assert.deepEqual(ordersPg.trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/).slice(1, 3)), [
        ['paid', '1000'],
        ['paid', '2000'],
        ['paid', '3000'],
      ], 'the newest version of each order; the deleted one is gone');
      const ordersMaria = out.slice(out.indexOf('orders in MariaDB'), out.indexOf('invoice (no mapping)'));
      assert.deepEqual(ordersMaria.trim().split('\n').slice(1, 4).map((line) => line.trim().split(/\s+/).slice(1, 3)), [
        ['paid', '1000'],
        ['paid', '2000'],
        ['paid', '3000'],
      ], ordersMaria);
      // Order 4 holds whichever version came before its delete (an upsert arriving after the v3 delete is
      // older, so ignored), soft-deleted; or no row at all when the delete came first.
      const fourth = ordersMaria.split('\n').find((line) => /demo-\w+-4 /.test(line));
      if (fourth !== undefined) assert.match(fourth, /demo-\w+-4 +(placed|paid) +4000 +customer 4 +deleted at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/, 'the delete is a soft delete there');
      assert.match(out, /invoice \(no mapping\) in synced_records:\n {2}demo-\w+-1 {2}v2 \{.*"status":"paid"/);
    } finally {
      await dev.stop();
      await pipeline.close();
    }
  });
});

describe('a target database that is down', function () {
  this.timeout(120_000);
  it('holds up only its own entities: their messages wait, then complete; the others flow', async () => {
    const { FaultProxy } = await import('./support/fault-proxy');
    const proxy = await FaultProxy.start('127.0.0.1', 3306);
    const pipeline = await TestPipeline.create({
      env: { OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '1000', OUTBOX_SYNC_ACTIVITY_MAX_INTERVAL_MS: '300' },
      userTables: {
        postgres: POSTGRES_TABLES,
        mysql: MYSQL_TABLES,
        mapping: (urls) => {
          const viaProxy = new URL(urls.mysql);
          viaProxy.port = String(proxy.port);
          return { ...mapping(urls), databases: { postgres: urls.postgres, mysql: viaProxy.toString() } };
        },
      },
    });
    try {
      await pipeline.startWorker();
      pipeline.startDispatcher();
      proxy.refuse();
      const ids = await enqueueBatch(pipeline.stores.outbox, [
        ...Array.from({ length: 5 }, (_, i) => ({ entity: 'order_mysql', key: String(100 + i), data: { total: i } })),
        ...Array.from({ length: 5 }, (_, i) => ({ entity: 'order_postgres', key: String(100 + i), data: { total: i } })),
      ]);
      await pipeline.waitForStatus(ids.slice(5), ['completed']);
      await new Promise((r) => setTimeout(r, 2_000));
      const waiting = await pipeline.waitForStatus(ids.slice(0, 5), ['processing']);
      assert.equal(waiting.length, 5, 'the MariaDB messages wait while it is down');
      await proxy.restore();
      const done = await pipeline.waitForStatus(ids.slice(0, 5), ['completed'], 60_000);
      assert.equal(done.length, 5);
      assert.equal(Number((await pipeline.user!.mysql<{ n: string }>('SELECT count(*) AS n FROM orders'))[0]!.n), 5);
    } finally {
      await pipeline.close();
      await proxy.close();
    }
  });
});
