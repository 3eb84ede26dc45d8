/**
 * `outbox-sync verify`, against the real pipeline: messages synced into synced_records and into a user's
 * own tables in PostgreSQL and MariaDB, then the target tampered with by hand, key by key, as a bug or an
 * operator could; verify must name each damaged key and its problem, and nothing else. Each run is
 * recorded in the outbox, and an `ingest` process's /metrics carries the last one's result.
 */
import assert from 'node:assert/strict';
import { enqueueBatch } from '../stores/outbox/enqueue';
import { KEPT_VERIFY_RUNS, readLastVerifyRun, recordVerifyRun } from '../stores/outbox/verify-runs';
import { TestPipeline, waitFor } from './support/pipeline';
import { ProcessGroup, runCli } from './support/processes';
import { parsePrometheus, type Sample } from './support/prometheus';
import { freePort } from './support/stack';

const POSTGRES_TABLES = `
  CREATE TABLE orders (id bigint PRIMARY KEY, total_cents bigint NOT NULL, doc jsonb, at timestamptz, deleted_at timestamptz);`;
const MYSQL_TABLES = `
  CREATE TABLE orders (id bigint PRIMARY KEY, total_cents bigint NOT NULL, doc json, at datetime(6), deleted_at datetime(6) NULL);`;

const ENGINES = ['postgres', 'mysql'] as const;

function mapping(urls: { postgres: string; mysql: string }) {
  const entities: Record<string, unknown> = {};
  for (const engine of ENGINES) {
    entities[`order_${engine}`] = {
      database: engine,
      table: 'orders',
      key: 'id',
      columns: { total_cents: 'total', doc: 'doc', at: 'at' },
      onDelete: { softDelete: 'deleted_at' },
    };
  }
  return { databases: { postgres: urls.postgres, mysql: urls.mysql }, entities };
}

interface Report {
  checked: number;
  missing: number;
  stale: number;
  different: number;
  keys: { entity: string; key: string; problem: string; messageId: number }[];
}

/** The verify gauges of one scrape, by name (the problems by their label). */
function verifyGauges(samples: Sample[]): Record<string, number> {
  const found: Record<string, number> = {};
  for (const s of samples.filter((s) => s.name.startsWith('outbox_sync_verify_'))) found[s.labels.problem ? `${s.name}{${s.labels.problem}}` : s.name] = s.value;
  return found;
}

describe('verify: is the target complete?', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let processes: ProcessGroup;
  let metricsUrl: string;

  before(async () => {
    pipeline = await TestPipeline.create({ userTables: { postgres: POSTGRES_TABLES, mysql: MYSQL_TABLES, mapping } });
    await pipeline.startWorker();
    pipeline.startDispatcher();
    const upserts = [];
    for (const entity of ['invoice', 'order_postgres', 'order_mysql']) {
      for (let key = 1; key <= 7; key++) {
        // Two versions of every key, the newer one first: the target keeps version 2.
        for (const version of [2, 1]) {
          upserts.push({ entity, key: String(key), version, data: { total: key * 100 + version, doc: { lines: [key, version] }, at: '2026-12-03T10:00:00.123Z' } });
        }
      }
    }
    // Versions 9 and 10 of one key: 10 is the newer, though "9" > "10" as text.
    upserts.push({ entity: 'invoice', key: '9', version: 9, data: { total: 9 } }, { entity: 'invoice', key: '9', version: 10, data: { total: 10 } });
    await pipeline.waitForStatus(await enqueueBatch(pipeline.stores.outbox, upserts), ['completed'], 60_000);
    // Then key 7 deleted (a tombstone; a soft delete in the user's tables), and two completed messages at
    // one version with other data: the target holds the first, and that is right.
    const later = [
      ...['invoice', 'order_postgres', 'order_mysql'].map((entity) => ({ entity, key: '7', version: 3, op: 'delete' as const })),
      { entity: 'invoice', key: '8', version: 5, data: { total: 1 } },
      { entity: 'invoice', key: '8', version: 5, data: { total: 2 } },
    ];
    await pipeline.waitForStatus(await enqueueBatch(pipeline.stores.outbox, later), ['completed'], 60_000);
    await pipeline.stopDispatchers();
    await pipeline.stopWorkers();
    // A process that serves the outbox's gauges: ingest, which runs nothing else of the pipeline.
    processes = new ProcessGroup(pipeline);
    const port = await freePort();
    processes.start('ingest', { INGEST_PORT: String(port), INGEST_TOKENS: 'press=verify-test-token-0123' });
    metricsUrl = `http://127.0.0.1:${port}/metrics`;
  });

  after(async () => {
    await processes?.killAll();
    await pipeline?.close();
  });

  async function scrapeVerifyGauges(): Promise<Record<string, number>> {
    const text = await waitFor('ingest to serve /metrics', async () => {
      const response = await fetch(metricsUrl).catch(() => undefined);
      return response?.status === 200 ? response.text() : undefined;
    });
    return verifyGauges(parsePrometheus(text));
  }

  async function verify(args: string[] = []): Promise<{ code: number | null; report: Report }> {
    const run = await runCli(['verify', '--json', ...args], pipeline.processEnv());
    assert.equal(run.stderr, '');
    return { code: run.code, report: JSON.parse(run.stdout) as Report };
  }

  it('passes on a target the pipeline wrote: exit 0, every key checked, in any batch size', async () => {
    for (const batch of ['1000', '2']) {
      const { code, report } = await verify(['--batch-size', batch]);
      assert.deepEqual(report, { checked: 3 * 7 + 2, missing: 0, stale: 0, different: 0, keys: [] }, `--batch-size ${batch}`);
      assert.equal(code, 0);
    }
    const text = await runCli(['verify'], pipeline.processEnv());
    assert.equal(text.stdout, 'checked 23 key(s): the target matches\n');
  });

  it('records each run in the outbox, and /metrics carries the last one (a time of 0 and no result before any)', async () => {
    await pipeline.stores.outbox.query('DELETE FROM outbox_verify_runs');
    assert.deepEqual(await scrapeVerifyGauges(), { outbox_sync_verify_last_run_timestamp_seconds: 0 }, 'before verify has run');

    const started = Date.now();
    assert.equal((await verify()).code, 0);
    const run = await readLastVerifyRun(pipeline.stores.outbox);
    assert.ok(run, 'the run is recorded');
    const { startedAt, finishedAt, ...found } = run;
    assert.ok(startedAt.getTime() >= started - 1000 && finishedAt >= startedAt && finishedAt.getTime() <= Date.now(), `${startedAt.toISOString()} to ${finishedAt.toISOString()}`);
    assert.deepEqual(found, { entity: null, checked: 23, missing: 0, stale: 0, different: 0, repaired: null, passed: true });
    // The outbox gauges read the outbox at most once a second: a scrape just before the run may still be served.
    const after = await waitFor('a scrape after the run', async () => {
      const gauges = await scrapeVerifyGauges();
      return gauges.outbox_sync_verify_last_run_timestamp_seconds !== 0 ? gauges : undefined;
    });
    assert.deepEqual(after, {
      outbox_sync_verify_last_run_timestamp_seconds: finishedAt.getTime() / 1000,
      outbox_sync_verify_passed: 1,
      outbox_sync_verify_checked_keys: 23,
      'outbox_sync_verify_problems{missing}': 0,
      'outbox_sync_verify_problems{stale}': 0,
      'outbox_sync_verify_problems{different}': 0,
    });
  });

  it('names each damaged key and its problem on synced_records and on both engines: exit 3', async () => {
    const { user } = pipeline;
    // synced_records: a row gone, a row an older version, a row with other data, a tombstone undone.
    await pipeline.targetAdmin(`DELETE FROM synced_records WHERE entity = 'invoice' AND entity_key = '1'`);
    await pipeline.targetAdmin(`UPDATE synced_records SET version = 1 WHERE entity = 'invoice' AND entity_key = '2'`);
    await pipeline.targetAdmin(`UPDATE synced_records SET data = jsonb_set(data, '{total}', '0') WHERE entity = 'invoice' AND entity_key = '3'`);
    await pipeline.targetAdmin(`UPDATE synced_records SET deleted = false, data = '{}' WHERE entity = 'invoice' AND entity_key = '7'`);
    // Version 9's row where version 10 completed: stale, however the versions sort as text.
    await pipeline.targetAdmin(`UPDATE synced_records SET version = 9, data = '{"total": 9}' WHERE entity = 'invoice' AND entity_key = '9'`);
    // PostgreSQL: a row gone, its bookkeeping an older version, a column changed, a JSON value changed, a soft delete undone.
    await user!.postgres('DELETE FROM orders WHERE id = 1');
    await user!.postgres(`UPDATE outbox_sync_versions SET version = 1 WHERE entity = 'order_postgres' AND entity_key = '2'`);
    await user!.postgres('UPDATE orders SET total_cents = 0 WHERE id = 3');
    await user!.postgres(`UPDATE orders SET doc = '{"lines": [4, 1]}' WHERE id = 4`);
    await user!.postgres('UPDATE orders SET deleted_at = NULL WHERE id = 7');
    // MariaDB: the same five.
    await user!.mysql('DELETE FROM orders WHERE id = 1');
    await user!.mysql(`UPDATE outbox_sync_versions SET version = 1 WHERE entity = 'order_mysql' AND entity_key = '2'`);
    await user!.mysql('UPDATE orders SET total_cents = 0 WHERE id = 3');
    await user!.mysql(`UPDATE orders SET doc = '{"lines": [4, 1]}' WHERE id = 4`);
    await user!.mysql('UPDATE orders SET deleted_at = NULL WHERE id = 7');

    const { code, report } = await verify();
    assert.equal(code, 3);
    const found = report.keys.map((k) => `${k.entity} ${k.key} ${k.problem}`);
    assert.deepEqual(found, [
      'invoice 1 missing',
      'invoice 2 stale',
      'invoice 3 different',
      'invoice 7 different',
      'invoice 9 stale',
      'order_mysql 1 missing',
      'order_mysql 2 stale',
      'order_mysql 3 different',
      'order_mysql 4 different',
      'order_mysql 7 different',
      'order_postgres 1 missing',
      'order_postgres 2 stale',
      'order_postgres 3 different',
      'order_postgres 4 different',
      'order_postgres 7 different',
    ]);
    assert.deepEqual([report.checked, report.missing, report.stale, report.different], [23, 3, 4, 8]);
    // Read once the outbox gauges' one-second reading has passed the run (the passing run's may still be served).
    const failedRun = await waitFor('a scrape after the failed run', async () => {
      const gauges = await scrapeVerifyGauges();
      return gauges.outbox_sync_verify_passed === 0 ? gauges : undefined;
    });
    assert.deepEqual(
      [failedRun['outbox_sync_verify_problems{missing}'], failedRun['outbox_sync_verify_problems{stale}'], failedRun['outbox_sync_verify_problems{different}']],
      [3, 4, 8],
    );
    // A JSON value written again with other spacing and key order is the same value.
    await user!.postgres(`UPDATE orders SET doc = '{ "lines" : [4,2] }' WHERE id = 4`);
    await user!.mysql(`UPDATE orders SET doc = '{ "lines" : [4,2] }' WHERE id = 4`);

    const one = await verify(['--entity', 'order_postgres', '--batch-size', '2']);
    assert.equal(one.code, 3);
    assert.deepEqual(
      one.report.keys.map((k) => `${k.key} ${k.problem}`),
      ['1 missing', '2 stale', '3 different', '7 different'],
    );
    assert.equal(one.report.checked, 7);

    const text = await runCli(['verify', '--entity', 'order_mysql'], pipeline.processEnv());
    assert.equal(text.code, 3);
    assert.match(text.stdout, /^checked 7 key\(s\): 1 missing, 1 stale, 2 different\nmissing {3}order_mysql 1 \(message \d+\)\n/);
    // Runs narrowed to one entity are recorded, but the last verification is still the run over every entity.
    const { rows: narrowed } = await pipeline.stores.outbox.query(`SELECT entity, checked::int FROM outbox_verify_runs ORDER BY id DESC LIMIT 2`);
    assert.deepEqual(narrowed, [{ entity: 'order_mysql', checked: 7 }, { entity: 'order_postgres', checked: 7 }]);
    assert.deepEqual(await scrapeVerifyGauges(), failedRun);
  });

  it('--repair sends each damaged key through the pipeline again, recorded as a repair, and verify then passes', async () => {
    const before = await verify();
    const problems = before.report.missing + before.report.stale + before.report.different;
    assert.ok(problems > 0, 'the previous test left damaged keys');
    const run = await runCli(['verify', '--repair', '--json'], pipeline.processEnv());
    assert.equal(run.code, 3, run.stderr);
    const repaired = JSON.parse(run.stdout) as Report & { repaired: number };
    assert.equal(repaired.repaired, problems);
    const recorded = await readLastVerifyRun(pipeline.stores.outbox);
    assert.deepEqual([recorded?.repaired, recorded?.passed], [problems, false], 'the run records what it repaired');
    const ids = repaired.keys.map((k) => k.messageId);
    const { rows: history } = await pipeline.stores.outbox.query<{ message_id: string }>(
      "SELECT message_id FROM outbox_message_history WHERE actor = 'repair' AND from_status = 'completed' AND to_status = 'pending' ORDER BY message_id",
    );
    assert.deepEqual(history.map((h) => Number(h.message_id)), [...ids].sort((a, b) => a - b));

    await pipeline.startWorker();
    pipeline.startDispatcher();
    await pipeline.waitForStatus(ids, ['completed'], 60_000);
    const after = await verify();
    assert.deepEqual([after.code, after.report.missing, after.report.stale, after.report.different], [0, 0, 0, 0]);
    // The repaired rows hold the newest message again, at the same version.
    const [record] = (await pipeline.targetAdmin(`SELECT version::int AS version, data FROM synced_records WHERE entity = 'invoice' AND entity_key = '3'`)).rows;
    assert.deepEqual(record, { version: 2, data: { total: 302, doc: { lines: [3, 2] }, at: '2026-12-03T10:00:00.123Z' } });
  });

  it(`keeps the newest ${KEPT_VERIFY_RUNS} runs, and the newest over every entity however many narrowed runs came after it`, async () => {
    const at = new Date();
    const whole = await recordVerifyRun(pipeline.stores.outbox, { startedAt: at, entity: null, checked: 5, missing: 1, stale: 0, different: 0, repaired: null });
    for (let i = 0; i < KEPT_VERIFY_RUNS + 5; i++) {
      await recordVerifyRun(pipeline.stores.outbox, { startedAt: at, entity: 'order_postgres', checked: i, missing: 0, stale: 0, different: 0, repaired: null });
    }
    const { rows } = await pipeline.stores.outbox.query<{ entity: string | null; checked: number }>('SELECT entity, checked::int FROM outbox_verify_runs ORDER BY id');
    assert.equal(rows.length, KEPT_VERIFY_RUNS + 1);
    assert.deepEqual(rows[0], { entity: null, checked: 5 });
    assert.deepEqual(rows.slice(1).map((r) => r.checked), Array.from({ length: KEPT_VERIFY_RUNS }, (_, i) => i + 5));
    assert.deepEqual(await readLastVerifyRun(pipeline.stores.outbox), whole);
  });
});
