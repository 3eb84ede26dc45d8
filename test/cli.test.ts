import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enqueue, enqueueBatch } from '../stores/outbox/enqueue';
import { FaultProxy } from './support/fault-proxy';
import { TestPipeline } from './support/pipeline';
import { BIN, runCli } from './support/processes';
import { packageRoot as ROOT } from '../config/package-root';

/** The package root (this file runs from dist/test/) and its real binary. */

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The lines a stream printed, without the final newline. */
function lines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

/** Asserts a refusal as the contract has it: exit 2, nothing on stdout, one line on stderr starting "outbox-sync:". */
function assertRefused(run: Run, reason: RegExp): void {
  assert.equal(run.code, 2, `exit code (stderr: ${run.stderr})`);
  assert.equal(run.stdout, '');
  assert.equal(lines(run.stderr).length, 1, `one line on stderr, got: ${JSON.stringify(run.stderr)}`);
  assert.ok(run.stderr.startsWith('outbox-sync: '), run.stderr);
  assert.match(run.stderr, reason);
}

describe('the outbox-sync command line, run as a process against a real outbox', () => {
  let pipeline: TestPipeline;
  let dir: string;

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
    dir = mkdtempSync(join(tmpdir(), 'outbox-sync-cli-test-'));
  });

  afterEach(async () => {
    rmSync(dir, { recursive: true, force: true });
    await pipeline.close();
  });

  function cli(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
    return runCli(args, pipeline.processEnv(options.env), options.input);
  }

  async function query<T extends Record<string, unknown> = Record<string, any>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await pipeline.stores.outbox.query<T>(sql, params)).rows;
  }

  async function countMessages(): Promise<number> {
    const [row] = await query<{ n: string }>('SELECT count(*) AS n FROM outbox_messages');
    return Number(row!.n);
  }

  async function statusOf(id: number): Promise<{ status: string; attempts: number }> {
    const [row] = await query<{ status: string; attempts: number }>('SELECT status, executions AS attempts FROM outbox_messages WHERE id = $1', [id]);
    assert.ok(row, `message ${id} exists`);
    return row;
  }

  /** `n` messages inserted with plain SQL, already in `status` (completed ones finished a day ago). */
  async function insertRows(n: number, status: 'completed' | 'dead'): Promise<void> {
    await query(
      `INSERT INTO outbox_messages (entity, entity_key, version, data, status, executions, completed_at)
       SELECT 'order', 'bulk-' || g, g, '{}', $2, 1, CASE WHEN $2 = 'completed' THEN now() - interval '1 day' END
         FROM generate_series(1, $1::int) g`,
      [n, status],
    );
  }

  /** Runs the command on a pseudo-terminal (util-linux `script`) and returns what the terminal showed. */
  function onTerminal(args: string[]): Promise<string> {
    const command = [BIN, ...args].map((a) => `'${a}'`).join(' ');
    return new Promise((resolvePromise, reject) => {
      const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: pipeline.processEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let shown = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (shown += chunk));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolvePromise(shown) : reject(new Error(`exit ${code}: ${shown}`))));
    });
  }

  function ndjsonFile(text: string): string {
    const path = join(dir, 'messages.ndjson');
    writeFileSync(path, text);
    return path;
  }

  describe('enqueue', () => {
    it('stores a message from flags and prints its id', async () => {
      const run = await cli(['enqueue', '--entity', 'order', '--key', '1', '--data', '{"a":1}']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, '');
      assert.match(run.stdout, /^[1-9][0-9]*\n$/);
      const id = Number(run.stdout);
      const rows = await query('SELECT entity, entity_key, op, version, data, status FROM outbox_messages');
      assert.deepEqual(rows, [{ entity: 'order', entity_key: '1', op: 'upsert', version: String(id), data: { a: 1 }, status: 'pending' }]);
    });

    it('stores the op, version, source and idempotency key given as flags', async () => {
      const run = await cli(['enqueue', '--entity', 'order', '--key', '2', '--op', 'delete', '--version', '12', '--source', 'shop', '--idempotency-key', 'req-1']);
      assert.equal(run.code, 0, run.stderr);
      const rows = await query('SELECT id, op, version, data, source, idempotency_key FROM outbox_messages');
      assert.deepEqual(rows, [{ id: run.stdout.trim(), op: 'delete', version: '12', data: null, source: 'shop', idempotency_key: 'req-1' }]);
    });

    it('refuses --data that is not JSON with exit 2 and one line, and stores nothing', async () => {
      const run = await cli(['enqueue', '--entity', 'order', '--key', '1', '--data', '{"a":1']);
      assertRefused(run, /--data: is not valid JSON/);
      assert.equal(await countMessages(), 0);
    });

    it('refuses a message without --entity with exit 2', async () => {
      const run = await cli(['enqueue', '--key', '1', '--data', '{"a":1}']);
      assertRefused(run, /--entity is required/);
      assert.equal(await countMessages(), 0);
    });

    it('refuses a message that fails validation, naming the field', async () => {
      const run = await cli(['enqueue', '--entity', 'order', '--key', '1', '--version', '007', '--data', '{"a":1}']);
      assertRefused(run, /^outbox-sync: version: /);
      assert.equal(await countMessages(), 0);
    });

    it('stores every line of an NDJSON file and prints their ids in order', async () => {
      const file = ndjsonFile(
        ['{"entity":"order","key":"1","data":{"n":1}}', '{"entity":"order","key":"2","data":{"n":2}}', '{"entity":"order","key":"3","op":"delete"}', ''].join('\n'),
      );
      const run = await cli(['enqueue', '--ndjson', file]);
      assert.equal(run.code, 0, run.stderr);
      const ids = lines(run.stdout);
      assert.equal(ids.length, 3);
      assert.ok(ids.every((id) => /^[1-9][0-9]*$/.test(id)), run.stdout);
      const rows = await query<{ id: string; entity_key: string; op: string }>('SELECT id, entity_key, op FROM outbox_messages ORDER BY id');
      assert.deepEqual(
        rows.map((r) => [r.id, r.entity_key, r.op]),
        [
          [ids[0], '1', 'upsert'],
          [ids[1], '2', 'upsert'],
          [ids[2], '3', 'delete'],
        ],
      );
    });

    it('refuses an NDJSON file with a bad 2nd line, naming line 2, and stores none of its lines', async () => {
      const file = ndjsonFile(['{"entity":"order","key":"1","data":{}}', '{"entity":"order","key":2,"data":{}}', '{"entity":"order","key":"3","data":{}}'].join('\n'));
      const run = await cli(['enqueue', '--ndjson', file]);
      assertRefused(run, /line 2/);
      assert.equal(await countMessages(), 0);
    });

    it('refuses an NDJSON file whose 2nd line is not JSON, naming line 2', async () => {
      const file = ndjsonFile(['{"entity":"order","key":"1","data":{}}', '{"entity":"order",', '{"entity":"order","key":"3","data":{}}'].join('\n'));
      const run = await cli(['enqueue', '--ndjson', file]);
      assertRefused(run, /line 2: is not valid JSON/);
      assert.equal(await countMessages(), 0);
    });

    it('reads NDJSON from stdin with --ndjson -', async () => {
      const run = await cli(['enqueue', '--ndjson', '-'], {
        input: '{"entity":"order","key":"a","data":{"n":1}}\n{"entity":"order","key":"b","data":{"n":2}}\n',
      });
      assert.equal(run.code, 0, run.stderr);
      const ids = lines(run.stdout);
      const rows = await query<{ id: string; entity_key: string }>('SELECT id, entity_key FROM outbox_messages ORDER BY id');
      assert.deepEqual(
        rows.map((r) => [r.id, r.entity_key]),
        [
          [ids[0], 'a'],
          [ids[1], 'b'],
        ],
      );
    });
  });

  describe('the launcher (bin/outbox-sync)', () => {
    it('starts node with two malloc arenas unless the environment says otherwise, and passes OUTBOX_SYNC_NODE_ARGS to node', async () => {
      // A module node loads first (--require) reports what the process got.
      const report = join(dir, 'report.js');
      writeFileSync(report, `require('fs').appendFileSync(${JSON.stringify(join(dir, 'arenas'))}, (process.env.MALLOC_ARENA_MAX ?? 'unset') + '\\n');`);
      const nodeArgs = `--require ${report} --cpu-prof --cpu-prof-dir=${join(dir, 'profile')}`;
      assert.equal((await cli(['--help'], { env: { OUTBOX_SYNC_NODE_ARGS: nodeArgs } })).code, 0);
      assert.equal((await cli(['--help'], { env: { OUTBOX_SYNC_NODE_ARGS: nodeArgs, MALLOC_ARENA_MAX: '4' } })).code, 0);
      assert.deepEqual(readFileSync(join(dir, 'arenas'), 'utf8').split('\n'), ['2', '4', '']);
      assert.equal(readdirSync(join(dir, 'profile')).filter((f) => f.endsWith('.cpuprofile')).length, 2, 'node profiled both runs');
    });
  });

  describe('bad usage', () => {
    it('exits 2 on an unknown command, with one line', async () => {
      assertRefused(await cli(['frobnicate']), /unknown command 'frobnicate'/);
      assertRefused(await cli(['statsu']), /unknown command 'statsu'.*Did you mean status\?/);
    });

    it('exits 2 when no command is given, and 0 when help is asked for', async () => {
      const bare = await cli([]);
      assert.equal(bare.code, 2);
      const help = await cli(['--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /enqueue/);
    });

    it('refuses a message id past the integers JavaScript holds exactly', async () => {
      assertRefused(await cli(['inspect', '9007199254740993']), /is not a message id/);
    });

    it('refuses --ndjson mixed with message flags', async () => {
      const file = join(dir, 'one.ndjson');
      writeFileSync(file, '{"entity":"order","key":"1","data":{}}\n');
      assertRefused(await cli(['enqueue', '--ndjson', file, '--entity', 'order']), /--ndjson .* drop --entity/);
      assert.equal(await countMessages(), 0);
    });

    it('exits 2 on an unknown option, and stores nothing', async () => {
      const run = await cli(['enqueue', '--entity', 'order', '--key', '1', '--data', '{}', '--colour', 'red']);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /unknown option '--colour'/);
      assert.equal(await countMessages(), 0);
    });

    it('exits 1 with one line saying to migrate when the outbox database does not exist', async () => {
      const missing = new URL(pipeline.config.outboxDatabaseUrl);
      missing.pathname = '/outbox_sync_never_created';
      const run = await cli(['status'], { env: { OUTBOX_DATABASE_URL: missing.toString() } });
      assert.equal(run.code, 1);
      assert.equal(lines(run.stderr).length, 1, run.stderr);
      assert.match(run.stderr, /^outbox-sync: database "outbox_sync_never_created" does not exist \(run: outbox-sync migrate\)/);
    });

    it('exits 2 with one line naming the setting when a setting is wrong', async () => {
      const run = await cli(['status', '--json'], { env: { OUTBOX_SYNC_MAX_EXECUTIONS: 'abc' } });
      assertRefused(run, /^outbox-sync: OUTBOX_SYNC_MAX_EXECUTIONS: /);
    });
  });

  describe('status', () => {
    it('prints zero counts and no age for an empty outbox', async () => {
      const run = await cli(['status', '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, '{"counts":{"pending":0,"processing":0,"completed":0,"failed":0,"dead":0},"oldestPendingSeconds":0,"overdue":0,"slaSeconds":null}\n');
    });

    it('prints the count of each status and the age of the oldest pending message as JSON', async () => {
      const { outbox } = pipeline.stores;
      const ids = await enqueueBatch(
        outbox,
        Array.from({ length: 8 }, (_, i) => ({ entity: 'order', key: String(i), data: { i } })),
      );
      const statuses = ['pending', 'pending', 'processing', 'completed', 'completed', 'completed', 'failed', 'dead'];
      await query(`UPDATE outbox_messages m SET status = s.status FROM unnest($1::bigint[], $2::text[]) AS s(id, status) WHERE m.id = s.id`, [ids, statuses]);
      await query(`UPDATE outbox_messages SET created_at = now() - interval '1 hour' WHERE id = $1`, [ids[1]]);
      // A completed message created long ago does not count as the oldest pending one.
      await query(`UPDATE outbox_messages SET created_at = now() - interval '3 hours' WHERE id = $1`, [ids[3]]);

      const run = await cli(['status', '--json']);
      assert.equal(run.code, 0, run.stderr);
      const match = /^\{"counts":\{"pending":2,"processing":1,"completed":3,"failed":1,"dead":1\},"oldestPendingSeconds":(\d+),"overdue":0,"slaSeconds":null\}\n$/.exec(run.stdout);
      assert.ok(match, run.stdout);
      const age = Number(match[1]);
      assert.ok(age >= 3600 && age < 3600 + 60, `oldest pending is about an hour old, got ${age} s`);
    });

    it('says which setting names a database that does not answer, its address and what happened, in one line: exit 1', async () => {
      const proxy = await FaultProxy.start('127.0.0.1', 5432);
      proxy.refuse();
      try {
        const url = new URL(pipeline.env.OUTBOX_DATABASE_URL!);
        url.host = `localhost:${proxy.port}`;
        const run = await cli(['status'], { env: { OUTBOX_DATABASE_URL: url.toString() } });
        assert.equal(run.code, 1);
        assert.equal(run.stderr, `outbox-sync: OUTBOX_DATABASE_URL (localhost:${proxy.port}${url.pathname}): the connection was refused\n`);
        // Both settings named, when they name the same server.
        const both = await cli(['retry', '--dead'], { env: { OUTBOX_DATABASE_URL: url.toString(), TARGET_DATABASE_URL: url.toString() } });
        assert.equal(both.code, 1);
        assert.match(both.stderr, /^outbox-sync: OUTBOX_DATABASE_URL, TARGET_DATABASE_URL \(localhost:\d+\/[a-z0-9_]+\): the connection was refused\n$/);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('inspect', () => {
    it('prints a message with its fields as JSON', async () => {
      const id = await enqueue(pipeline.stores.outbox, {
        entity: 'order',
        key: '42',
        version: 7,
        data: { total: 9.5 },
        source: 'shop',
        idempotencyKey: 'req-42',
      });
      const run = await cli(['inspect', String(id), '--json']);
      assert.equal(run.code, 0, run.stderr);
      const message = JSON.parse(run.stdout);
      assert.deepEqual(
        {
          id: message.id,
          source: message.source,
          entity: message.entity,
          key: message.key,
          op: message.op,
          version: message.version,
          data: message.data,
          idempotencyKey: message.idempotencyKey,
          status: message.status,
          attempts: message.attempts,
          lastError: message.lastError,
          workflowId: message.workflowId,
          temporalUi: message.temporalUi,
        },
        {
          id,
          source: 'shop',
          entity: 'order',
          key: '42',
          op: 'upsert',
          version: '7',
          data: { total: 9.5 },
          idempotencyKey: 'req-42',
          status: 'pending',
          attempts: 0,
          lastError: null,
          workflowId: null,
          temporalUi: null,
        },
      );
      assert.ok(!Number.isNaN(Date.parse(message.createdAt)), message.createdAt);
    });

    it('links a message with a workflow to its execution in the Temporal UI', async () => {
      const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: '42', data: {} });
      await query(`UPDATE outbox_messages SET status = 'failed', executions = 2, last_error = 'target down', workflow_id = $2 WHERE id = $1`, [id, `wf-${id}`]);
      const run = await cli(['inspect', String(id), '--json']);
      assert.equal(run.code, 0, run.stderr);
      const message = JSON.parse(run.stdout);
      assert.equal(message.status, 'failed');
      assert.equal(message.attempts, 2);
      assert.equal(message.lastError, 'target down');
      assert.equal(message.workflowId, `wf-${id}`);
      assert.equal(message.temporalUi, `${pipeline.config.temporalUiUrl}/namespaces/${pipeline.config.temporalNamespace}/workflows/wf-${id}`);
    });

    it('exits 2 for a message that does not exist', async () => {
      const run = await cli(['inspect', '999999']);
      assertRefused(run, /message 999999 does not exist/);
    });

    it('exits 2 for an id that is not a number', async () => {
      const run = await cli(['inspect', 'abc']);
      assertRefused(run, /"abc" is not a message id/);
    });
  });

  describe('retry', () => {
    it('exits 2 when given neither ids nor --dead nor --failed', async () => {
      const run = await cli(['retry']);
      assertRefused(run, /retry takes message ids, --dead or --failed/);
    });

    it('sends dead messages back to pending with --dead, and leaves failed ones alone', async () => {
      const [dead, failed] = await enqueueBatch(pipeline.stores.outbox, [
        { entity: 'order', key: '1', data: {} },
        { entity: 'order', key: '2', data: {} },
      ]);
      await query(`UPDATE outbox_messages SET status = 'dead', executions = 3, last_error = 'boom' WHERE id = $1`, [dead]);
      await query(`UPDATE outbox_messages SET status = 'failed', executions = 1 WHERE id = $1`, [failed]);
      const run = await cli(['retry', '--dead']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `1 message(s) sent back to pending: ${dead}\n`);
      assert.deepEqual(await statusOf(dead!), { status: 'pending', attempts: 0 });
      assert.deepEqual(await statusOf(failed!), { status: 'failed', attempts: 1 });
      const history = await query(`SELECT from_status, to_status, actor FROM outbox_message_history WHERE message_id = $1 ORDER BY id DESC LIMIT 1`, [dead]);
      assert.deepEqual(history, [{ from_status: 'dead', to_status: 'pending', actor: 'cli' }], 'the status history names the command line');
    });

    it('sends a failed message back to pending by its id', async () => {
      const [failed, other] = await enqueueBatch(pipeline.stores.outbox, [
        { entity: 'order', key: '1', data: {} },
        { entity: 'order', key: '2', data: {} },
      ]);
      await query(`UPDATE outbox_messages SET status = 'failed', executions = 2 WHERE id = ANY($1::bigint[])`, [[failed, other]]);
      const run = await cli(['retry', String(failed)]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, `1 message(s) sent back to pending: ${failed}\n`);
      assert.deepEqual(await statusOf(failed!), { status: 'pending', attempts: 0 });
      assert.deepEqual(await statusOf(other!), { status: 'failed', attempts: 2 });
    });

    it('retries thousands of dead messages in batches with --dead --json, each once', async () => {
      await insertRows(6_001, 'dead');
      const run = await cli(['retry', '--dead', '--json']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, '', 'no progress bar in a pipe');
      const result = JSON.parse(run.stdout);
      assert.equal(result.retried, 6_001);
      assert.equal(new Set(result.ids).size, 6_001);
      const [row] = await query<{ n: string }>(`SELECT count(*) AS n FROM outbox_messages WHERE status = 'pending' AND executions = 0`);
      assert.equal(Number(row!.n), 6_001);
      const [recorded] = await query<{ n: string }>(`SELECT count(*) AS n FROM outbox_message_history WHERE to_status = 'pending' AND actor = 'cli'`);
      assert.equal(Number(recorded!.n), 6_001, 'every batch names the command line');
    });

    it('leaves a completed message alone when retried by its id', async () => {
      const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: '1', data: {} });
      await query(`UPDATE outbox_messages SET status = 'completed', executions = 1, completed_at = now() WHERE id = $1`, [id]);
      const run = await cli(['retry', String(id)]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, '0 message(s) sent back to pending\n');
      assert.deepEqual(await statusOf(id), { status: 'completed', attempts: 1 });
    });
  });

  describe('prune', () => {
    it('deletes completed messages finished longer ago than the duration and keeps recent ones', async () => {
      const [old, recent, oldPending] = await enqueueBatch(pipeline.stores.outbox, [
        { entity: 'order', key: '1', data: {} },
        { entity: 'order', key: '2', data: {} },
        { entity: 'order', key: '3', data: {} },
      ]);
      await query(`UPDATE outbox_messages SET status = 'completed', completed_at = now() - interval '2 hours' WHERE id = $1`, [old]);
      await query(`UPDATE outbox_messages SET status = 'completed', completed_at = now() WHERE id = $1`, [recent]);
      await query(`UPDATE outbox_messages SET created_at = now() - interval '2 hours' WHERE id = $1`, [oldPending]);
      // Their completions are on the success stream (prune keeps a message until then).
      await pipeline.catchUpStreams();
      // A duration far longer than the command takes to start, so the recent message is surely within it.
      const run = await cli(['prune', '--older-than', '30m']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, '1 completed message(s) deleted\n');
      const rows = await query<{ id: string }>('SELECT id FROM outbox_messages ORDER BY id');
      assert.deepEqual(
        rows.map((r) => Number(r.id)),
        [recent, oldPending],
      );
    });

    it('takes a duration in seconds', async () => {
      const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: '1', data: {} });
      await query(`UPDATE outbox_messages SET status = 'completed', completed_at = now() - interval '1 minute' WHERE id = $1`, [id]);
      await pipeline.catchUpStreams();
      const run = await cli(['prune', '--older-than', '1s']);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, '1 completed message(s) deleted\n');
      assert.equal(await countMessages(), 0);
    });

    it('deletes in batches and prints {"deleted": n} with --json; a terminal sees a progress bar, a pipe does not', async () => {
      await insertRows(12_000, 'completed');
      const piped = await cli(['prune', '--older-than', '1h', '--json']);
      assert.equal(piped.code, 0, piped.stderr);
      assert.deepEqual(JSON.parse(piped.stdout), { deleted: 12_000 });
      assert.equal(piped.stderr, '');
      assert.equal(await countMessages(), 0);

      await insertRows(6_000, 'completed');
      const terminal = await onTerminal(['prune', '--older-than', '1h']);
      assert.match(terminal, /pruning \[.*\] 6000\/6000 \(100%\)/);
      assert.match(terminal, /6000 completed message\(s\) deleted/);
      assert.equal(await countMessages(), 0);
    });

    it('exits 2 on a duration it cannot read, and deletes nothing', async () => {
      const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: '1', data: {} });
      await query(`UPDATE outbox_messages SET status = 'completed', completed_at = now() - interval '1 day' WHERE id = $1`, [id]);
      const run = await cli(['prune', '--older-than', 'soon']);
      assertRefused(run, /--older-than: "soon" is not a duration/);
      assert.equal(await countMessages(), 1);
    });
  });

  describe('drain', () => {
    it('exits 0 with the final counts once nothing is pending, processing or failed', async () => {
      await insertRows(3, 'completed');
      await insertRows(2, 'dead');
      const run = await cli(['drain', '--timeout', '5s', '--json']);
      assert.equal(run.code, 0, run.stderr);
      const status = JSON.parse(run.stdout);
      assert.deepEqual(status.counts, { pending: 0, processing: 0, completed: 3, failed: 0, dead: 2 });
    });

    it('waits for a worker and a dispatcher to drain the backlog', async function () {
      this.timeout(90_000);
      await enqueueBatch(pipeline.stores.outbox, Array.from({ length: 10 }, (_, i) => ({ entity: 'order', key: `d${i}`, data: { i } })));
      const draining = cli(['drain', '--timeout', '60s', '--json']);
      await pipeline.startWorker();
      pipeline.startDispatcher();
      const run = await draining;
      assert.equal(run.code, 0, run.stderr);
      assert.equal(JSON.parse(run.stdout).counts.completed, 10);
    });

    it('exits 1 with one line when the backlog is not drained in time', async () => {
      await enqueue(pipeline.stores.outbox, { entity: 'order', key: '1', data: {} });
      const run = await cli(['drain', '--timeout', '1s']);
      assert.equal(run.code, 1);
      assert.equal(lines(run.stderr).length, 1, run.stderr);
      assert.match(run.stderr, /^outbox-sync: not drained after 1s: 1 message\(s\) still pending, processing or failed/);
    });
  });
});
