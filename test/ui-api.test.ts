/**
 * The outbox page's server: its API against a real outbox (Fastify's inject, or real HTTP for the
 * process), the history the trigger writes, and the executions of messages that ran through the real
 * pipeline on the test stack's Temporal.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../config/config';
import { packageRoot } from '../config/package-root';
import { enqueue } from '../stores/outbox/enqueue';
import { readMessage, readStatus } from '../stores/outbox/messages';
import { listExecutions } from '../temporal/executions';
import { lazyTemporal } from '../servers/ui/run-ui';
import { buildUiServer, type UiOptions } from '../servers/ui/ui-server';
import { TestPipeline, waitFor } from './support/pipeline';
import { runCli } from './support/processes';
import { freePort } from './support/stack';

const BIN = join(packageRoot, 'bin', 'outbox-sync');
const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdef';
const UI_ENV = { OUTBOX_SYNC_UI_TOKENS: `alice=${ALICE},bob=${BOB}`, OUTBOX_SYNC_UI_OPERATORS: 'alice' };

interface Call {
  method?: 'GET' | 'POST' | 'DELETE';
  token?: string | null;
  cookie?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

describe('ui: the outbox page server', () => {
  let pipeline: TestPipeline;
  let app: FastifyInstance;
  let logged: { fields: any; message: string }[];

  async function start(options: UiOptions = {}): Promise<void> {
    logged = [];
    const logger = { info: (fields: object, message: string) => logged.push({ fields, message }), warn: () => undefined, error: () => undefined };
    app = buildUiServer({ outbox: pipeline.stores.outbox }, pipeline.config, { logger, ...options });
    await app.ready();
  }

  /** An API call as alice by Bearer token unless told otherwise. */
  async function call(url: string, init: Call = {}): Promise<LightMyRequestResponse & { body: any }> {
    const headers: Record<string, string> = { ...init.headers };
    if (init.cookie) headers.cookie = init.cookie;
    else if (init.token !== null) headers.authorization = `Bearer ${init.token ?? ALICE}`;
    const method = init.method ?? (init.body === undefined ? 'GET' : 'POST');
    if (init.body !== undefined) headers['content-type'] ??= 'application/json';
    const response = await app.inject({ method, url, headers, ...(init.body === undefined ? {} : { payload: JSON.stringify(init.body) }) });
    let body: unknown;
    try {
      body = response.json();
    } catch {
      body = undefined;
    }
    return Object.assign(response, { body });
  }

  function assertRefused(response: { statusCode: number; body: any; payload: string }, status: number, error: string | RegExp): void {
    assert.equal(response.statusCode, status, response.payload);
    if (typeof error === 'string') assert.equal(response.body.error, error);
    else assert.match(response.body.error, error);
  }

  /** Messages in the given states, made with SQL (as producers may), returning their ids in order. */
  async function seed(rows: { status: string; entity?: string; key?: string; source?: string | null; error?: string | null }[]): Promise<number[]> {
    const ids: number[] = [];
    for (const row of rows) {
      const { rows: inserted } = await pipeline.stores.outbox.query(
        `INSERT INTO outbox_messages (entity, entity_key, source, data, status, executions, last_error)
         VALUES ($1, $2, $3, '{}', $4, $5, $6) RETURNING id`,
        [row.entity ?? 'order', row.key ?? `k${ids.length}`, row.source ?? null, row.status, row.status === 'pending' ? 0 : 1, row.error ?? null],
      );
      ids.push(Number(inserted[0].id));
    }
    // As a claim would have named them (this changes neither status nor executions: no history).
    await pipeline.stores.outbox.query(`UPDATE outbox_messages SET workflow_id = 'wf-' || id WHERE id = ANY($1::bigint[]) AND status <> 'pending'`, [ids]);
    return ids;
  }

  describe('with an outbox of its own', () => {
    beforeEach(async () => {
      pipeline = await TestPipeline.create({ env: UI_ENV });
      await start();
    });

    afterEach(async () => {
      await app.close();
      await pipeline.close();
    });

    it('refuses the API without a token or with an unknown one (401), and signs in and out with a session cookie', async () => {
      assertRefused(await call('/api/status', { token: null }), 401, 'sign in with an outbox page token');
      assertRefused(await call('/api/status', { token: 'not-a-known-token-at-all' }), 401, 'sign in with an outbox page token');
      assertRefused(await call('/api/me', { cookie: 'outbox_sync_ui=not-a-known-token-at-all' }), 401, 'sign in with an outbox page token');
      assertRefused(await call('/api/session', { token: null, body: { token: 'wrong-token-0123456789' } }), 401, 'unknown token');
      assertRefused(await call('/api/session', { token: null, body: {} }), 401, 'unknown token');

      const signIn = await call('/api/session', { token: null, body: { token: ALICE } });
      assert.equal(signIn.statusCode, 204, signIn.payload);
      const setCookie = String(signIn.headers['set-cookie']);
      assert.equal(setCookie, `outbox_sync_ui=${ALICE}; Path=/; HttpOnly; SameSite=Strict`);
      const cookie = `outbox_sync_ui=${ALICE}`;
      const me = await call('/api/me', { cookie });
      assert.equal(me.statusCode, 200, me.payload);
      assert.deepEqual(me.body, { name: 'alice', canRetry: true, temporalUiUrl: 'http://127.0.0.1:8233' });
      assert.deepEqual((await call('/api/me', { token: BOB })).body, { name: 'bob', canRetry: false, temporalUiUrl: 'http://127.0.0.1:8233' });

      const overHttps = await call('/api/session', { token: null, body: { token: BOB }, headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(overHttps.statusCode, 204);
      assert.equal(String(overHttps.headers['set-cookie']), `outbox_sync_ui=${BOB}; Path=/; HttpOnly; Secure; SameSite=Strict`);

      const signOut = await call('/api/session', { method: 'DELETE', cookie });
      assert.equal(signOut.statusCode, 204);
      assert.match(String(signOut.headers['set-cookie']), /^outbox_sync_ui=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict$/);
    });

    it('lets a read-only token look but not retry (403), and guards actions against other sites and non-JSON bodies', async () => {
      const [dead] = await seed([{ status: 'dead', error: 'boom' }]);
      assertRefused(
        await call(`/api/messages/${dead}/retry`, { token: BOB, body: {} }),
        403,
        'this token may look but not act (add its name to OUTBOX_SYNC_UI_OPERATORS)',
      );
      assertRefused(await call('/api/retry', { token: BOB, body: {} }), 403, /may look but not act/);
      assert.equal((await call(`/api/messages/${dead}`, { token: BOB })).statusCode, 200);

      const cookie = `outbox_sync_ui=${ALICE}`;
      const host = { host: 'ops.example:8090' };
      assertRefused(await call('/api/retry', { cookie, body: {}, headers: { ...host, origin: 'https://evil.example' } }), 403, /another site/);
      assertRefused(await call('/api/retry', { cookie, body: {}, headers: { ...host, origin: 'null' } }), 403, /another site/);
      assertRefused(await call('/api/retry', { cookie, body: {}, headers: { ...host, 'content-type': 'text/plain' } }), 403, 'Content-Type must be application/json');
      assertRefused(await call('/api/session', { token: null, body: { token: ALICE }, headers: { ...host, origin: 'https://evil.example' } }), 403, /another site/);
      assertRefused(await call('/api/session', { method: 'DELETE', cookie, headers: { ...host, origin: 'https://evil.example' } }), 403, /another site/);
      assert.equal((await readMessage(pipeline.stores.outbox, dead!))!.status, 'dead', 'nothing was retried');

      const sameSite = await call('/api/retry', { cookie, body: {}, headers: { ...host, origin: 'http://ops.example:8090' } });
      assert.equal(sameSite.statusCode, 200, sameSite.payload);
      assert.deepEqual(sameSite.body, { retried: 1 });
      const proxied = { host: '10.0.0.7:8090', 'x-forwarded-host': 'ops.example', origin: 'https://ops.example' };
      const behindProxy = await call('/api/retry', { cookie, body: {}, headers: proxied });
      assert.equal(behindProxy.statusCode, 200, behindProxy.payload);
      assertRefused(await call('/api/retry', { cookie, body: {}, headers: { ...proxied, 'x-forwarded-host': 'evil.example' } }), 403, /another site/);
    });

    it('answers /api/status exactly as readStatus (and status --json) count', async () => {
      await seed([{ status: 'pending' }, { status: 'pending' }, { status: 'failed' }, { status: 'dead' }, { status: 'completed' }, { status: 'processing' }]);
      await pipeline.stores.outbox.query(`UPDATE outbox_messages SET created_at = now() - interval '90 seconds' WHERE status = 'pending'`);
      const answer = await call('/api/status');
      assert.equal(answer.statusCode, 200);
      assert.deepEqual(answer.body, await readStatus(pipeline.stores.outbox, pipeline.config));
      assert.deepEqual(answer.body.counts, { pending: 2, processing: 1, completed: 1, failed: 1, dead: 1 });
      assert.ok(answer.body.oldestPendingSeconds >= 90);
    });

    it('lists failed and dead messages newest first, narrowed by each filter, with the total matching', async () => {
      const ids = await seed([
        { status: 'failed', entity: 'order', key: 'a', source: 'press-1', error: 'Target refused: 100% full' },
        { status: 'dead', entity: 'order', key: 'b', source: 'press-2', error: 'data: must be a JSON object' },
        { status: 'completed', entity: 'order', key: 'c' },
        { status: 'pending', entity: 'order', key: 'd' },
        { status: 'dead', entity: 'invoice', key: 'a', source: 'press-1', error: 'target refused: timeout' },
      ]);
      // updated_at in the order b, a, e (oldest to newest): the list shows e, a, b.
      const [a, b, , , e] = ids as [number, number, number, number, number];
      await pipeline.stores.outbox.query(
        `UPDATE outbox_messages SET updated_at = now() - (CASE id WHEN $1 THEN 2 WHEN $2 THEN 3 ELSE 1 END) * interval '1 minute'`,
        [a, b],
      );
      const list = async (query: string) => {
        const answer = await call(`/api/messages${query}`);
        assert.equal(answer.statusCode, 200, answer.payload);
        return answer.body;
      };
      const all = await list('');
      assert.deepEqual(all.messages.map((m: any) => m.id), [e, a, b]);
      assert.equal(all.total, 3);
      assert.equal(all.next, null);
      const [first] = all.messages;
      assert.deepEqual(Object.keys(first).sort(), [
        'attempts', 'createdAt', 'entity', 'id', 'key', 'lastError', 'lastErrorKind', 'overdueAt', 'source', 'status', 'temporalUrl', 'updatedAt', 'workflowId',
      ]);
      assert.equal(first.workflowId, `wf-${e}`);
      assert.equal(first.temporalUrl, `http://127.0.0.1:8233/namespaces/default/workflows/wf-${e}`);
      assert.match(first.updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

      const ids_ = (body: any) => body.messages.map((m: any) => m.id);
      assert.deepEqual(ids_(await list('?status=dead')), [e, b]);
      assert.deepEqual(ids_(await list('?status=completed,pending')), [ids[3], ids[2]]);
      assert.deepEqual(ids_(await list('?entity=order')), [a, b]);
      assert.deepEqual(ids_(await list('?key=a')), [e, a]);
      assert.deepEqual(ids_(await list('?source=press-1')), [e, a]);
      assert.deepEqual(ids_(await list('?error=TARGET%20REFUSED')), [e, a], 'case-insensitive substring');
      assert.deepEqual(ids_(await list('?error=100%25')), [a], '% is matched as itself');
      assert.deepEqual(ids_(await list('?error=_')), [], '_ is matched as itself');
      const narrowed = await list('?status=dead&entity=invoice&source=press-1&error=timeout&key=a');
      assert.deepEqual([ids_(narrowed), narrowed.total], [[e], 1]);
    });

    it('pages through the list with the cursor: no message twice or missed, ties on updated_at broken by id', async () => {
      // 25 messages failed by one statement share one updated_at; 5 more differ by a microsecond each.
      await pipeline.stores.outbox.query(
        `INSERT INTO outbox_messages (entity, entity_key, data, status, last_error) SELECT 'order', 'k' || n, '{}', 'failed', 'x' FROM generate_series(1, 30) n`,
      );
      await pipeline.stores.outbox.query(
        `UPDATE outbox_messages SET updated_at = timestamptz '2026-01-01 00:00:00.000001' + (CASE WHEN id > 25 THEN id ELSE 0 END) * interval '1 microsecond'`,
      );
      const { rows } = await pipeline.stores.outbox.query('SELECT id FROM outbox_messages ORDER BY updated_at DESC, id DESC');
      const expected = rows.map((r) => Number(r.id));
      const seen: number[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const answer: any = await call(`/api/messages?limit=7${after ? `&after=${after}` : ''}`);
        assert.equal(answer.statusCode, 200, answer.payload);
        assert.equal(answer.body.total, 30);
        seen.push(...answer.body.messages.map((m: any) => m.id));
        after = answer.body.next;
        pages++;
      } while (after !== null);
      assert.deepEqual(seen, expected);
      assert.equal(pages, 5);
    });

    it('refuses bad query parameters with 400 naming the parameter', async () => {
      assertRefused(await call('/api/messages?limit=0'), 400, 'limit: must be an integer from 1 to 200');
      assertRefused(await call('/api/messages?limit=201'), 400, 'limit: must be an integer from 1 to 200');
      assertRefused(await call('/api/messages?limit=ten'), 400, 'limit: must be an integer from 1 to 200');
      assertRefused(await call('/api/messages?status=failed,lost'), 400, 'status: "lost" is not one of pending, processing, completed, failed, dead');
      assertRefused(await call('/api/messages?after=bm90LWEtY3Vyc29y'), 400, 'after: is not a cursor from a previous page');
      assertRefused(await call('/api/messages?entity=a&entity=b'), 400, 'entity: must be text');
      assertRefused(await call(`/api/messages?key=${'k'.repeat(1001)}`), 400, 'key: must be at most 1000 characters');
    });

    it('retries one failed or dead message (recording the operator) and refuses a completed one (409) or an unknown one (404)', async () => {
      const [failed, dead, completed] = await seed([{ status: 'failed', error: 'boom' }, { status: 'dead', error: 'bang' }, { status: 'completed' }]);
      for (const id of [failed!, dead!]) {
        const answer = await call(`/api/messages/${id}/retry`, { body: {} });
        assert.equal(answer.statusCode, 200, answer.payload);
        assert.deepEqual(answer.body, { retried: [id] });
        const message = (await readMessage(pipeline.stores.outbox, id))!;
        assert.deepEqual([message.status, message.executions], ['pending', 0]);
      }
      assertRefused(
        await call(`/api/messages/${completed}/retry`, { body: {} }),
        409,
        `message ${completed} is completed: only failed or dead messages can be retried`,
      );
      assertRefused(await call(`/api/messages/${failed}/retry`, { body: {} }), 409, `message ${failed} is pending: only failed or dead messages can be retried`);
      assertRefused(await call('/api/messages/999999/retry', { body: {} }), 404, 'no message 999999');
      assertRefused(await call('/api/messages/0/retry', { body: {} }), 400, /^id: "0" is not a message id/);

      const history = (await call(`/api/messages/${dead}`)).body.history;
      assert.deepEqual(
        history.map((h: any) => [h.from, h.to, h.attempts, h.actor]),
        [
          [null, 'pending', 0, null],
          ['dead', 'pending', 0, 'ui:alice'],
        ],
      );
      assert.deepEqual(
        logged.filter((l) => l.message === 'retry').map((l) => l.fields),
        [
          { actor: 'ui:alice', count: 1, filter: { ids: [failed] } },
          { actor: 'ui:alice', count: 1, filter: { ids: [dead] } },
        ],
      );
    });

    it('retries every failed or dead message a filter matches, and only those', async () => {
      const [f1, d1, d2, , c1] = await seed([
        { status: 'failed', entity: 'order', error: 'Timeout talking to target' },
        { status: 'dead', entity: 'order', error: 'timeout' },
        { status: 'dead', entity: 'invoice', error: 'timeout' },
        { status: 'dead', entity: 'order', error: 'invalid data' },
        { status: 'completed', entity: 'order' },
      ]);
      const answer = await call('/api/retry', { body: { status: 'failed,dead', entity: 'order', error: 'TIMEOUT' } });
      assert.equal(answer.statusCode, 200, answer.payload);
      assert.deepEqual(answer.body, { retried: 2 });
      const { rows } = await pipeline.stores.outbox.query('SELECT id::int, status FROM outbox_messages ORDER BY id');
      assert.deepEqual(
        rows.map((r) => r.status),
        ['pending', 'pending', 'dead', 'dead', 'completed'],
      );
      const actors = await pipeline.stores.outbox.query('SELECT message_id::int AS id, actor FROM outbox_message_history ORDER BY id');
      assert.deepEqual(actors.rows, [
        { id: f1, actor: 'ui:alice' },
        { id: d1, actor: 'ui:alice' },
      ]);
      assert.deepEqual(logged.at(-1), { message: 'retry', fields: { actor: 'ui:alice', count: 2, filter: { statuses: ['failed', 'dead'], entity: 'order', error: 'TIMEOUT' } } });

      const rest = await call('/api/retry', { body: { status: null, entity: '', key: null, source: null, error: '' } });
      assert.deepEqual(rest.body, { retried: 2 }, 'empty fields: the default filter, every failed and dead message');
      assert.equal((await readMessage(pipeline.stores.outbox, d2!))!.status, 'pending');
      assert.equal((await readMessage(pipeline.stores.outbox, c1!))!.status, 'completed');
      assertRefused(await call('/api/retry', { body: { status: 'completed' } }), 400, 'status: "completed" is not one of failed, dead');
      assertRefused(await call('/api/retry', { body: [] }), 400, 'the body must be a JSON object');
    });

    it('shows a message with its history from creation, and answers 404 for an unknown id and 400 for a bad one', async () => {
      const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: '42', version: 7, data: { total: 9.5 }, idempotencyKey: 'pay-42', source: 'shop' });
      const answer = await call(`/api/messages/${id}`);
      assert.equal(answer.statusCode, 200, answer.payload);
      const { message, history, executions, executionsError } = answer.body;
      assert.deepEqual(
        { ...message, createdAt: undefined, updatedAt: undefined, availableAt: undefined },
        {
          id, source: 'shop', entity: 'order', key: '42', op: 'upsert', version: '7', data: { total: 9.5 }, idempotencyKey: 'pay-42',
          status: 'pending', attempts: 0, lastError: null, lastErrorKind: null, workflowId: null, completedAt: null, overdueAt: null, temporalUrl: null,
          target: { database: 'TARGET_DATABASE_URL', table: 'synced_records' },
          createdAt: undefined, updatedAt: undefined, availableAt: undefined,
        },
      );
      assert.deepEqual(history, [{ at: message.createdAt, from: null, to: 'pending', attempts: 0, error: null, actor: null }]);
      assert.deepEqual([executions, executionsError], [[], null], 'no workflow yet: nothing to ask Temporal');
      assertRefused(await call('/api/messages/999999'), 404, 'no message 999999');
      assertRefused(await call('/api/messages/abc'), 400, /^id: "abc" is not a message id/);
      assertRefused(await call('/api/messages/-1'), 400, /^id: "-1" is not a message id/);
    });

    it('counts completed messages and failures per minute over the last hour, with latency percentiles', async () => {
      const { outbox } = pipeline.stores;
      // Ten messages completed in the middle of the minute five minutes ago, 100 ms … 1000 ms after creation.
      const { rows } = await outbox.query(
        `WITH t AS (SELECT date_trunc('minute', now()) - interval '5 minutes' + interval '30 seconds' AS done)
         INSERT INTO outbox_messages (entity, entity_key, data, status, created_at, completed_at)
         SELECT 'order', 'k' || n, '{}', 'completed', t.done - n * interval '100 milliseconds', t.done FROM t, generate_series(1, 10) n
         RETURNING date_trunc('minute', completed_at) AS minute`,
      );
      // One completed two hours ago: outside the hour.
      await outbox.query(`INSERT INTO outbox_messages (entity, entity_key, data, status, completed_at) VALUES ('order', 'old', '{}', 'completed', now() - interval '2 hours')`);
      // Two failures now (through the trigger), and a retry (not a failure).
      const [f1, f2] = await seed([{ status: 'processing' }, { status: 'processing' }]);
      await outbox.query(`UPDATE outbox_messages SET status = 'failed', last_error = 'x' WHERE id = ANY($1::bigint[])`, [[f1, f2]]);
      await outbox.query(`UPDATE outbox_messages SET status = 'dead' WHERE id = $1`, [f1]);
      await outbox.query(`UPDATE outbox_messages SET status = 'pending' WHERE id = $1`, [f1]);

      const answer = await call('/api/activity');
      assert.equal(answer.statusCode, 200, answer.payload);
      const minutes: any[] = answer.body.minutes;
      assert.equal(minutes.length, 60);
      for (let i = 1; i < 60; i++) assert.equal(Date.parse(minutes[i].at) - Date.parse(minutes[i - 1].at), 60_000);
      assert.ok(Date.now() - Date.parse(minutes[59].at) < 60_000 + 5_000, 'the last entry is the current minute');
      const busy = minutes.find((m) => m.at === rows[0].minute.toISOString());
      assert.ok(busy, 'the minute of the completions is in the hour');
      // percentile_cont interpolates: p50 of 100..1000 is 550, p95 955, p99 991.
      assert.deepEqual(busy, { at: busy.at, completed: 10, failed: 0, latencyMs: { p50: 550, p95: 955, p99: 991 } });
      assert.equal(minutes.reduce((n, m) => n + m.completed, 0), 10);
      assert.equal(minutes.reduce((n, m) => n + m.failed, 0), 3, 'two moves to failed and one to dead');
      assert.ok(minutes.filter((m) => m !== busy).every((m) => m.completed === 0 && m.latencyMs === null));
    });

    it('answers /api/verify with the last verify run over every entity as the command recorded it, and null before any', async () => {
      assert.deepEqual((await call('/api/verify')).body, { lastRun: null });
      // A completed message whose row never reached the target: verify finds it missing.
      await seed([{ status: 'completed', entity: 'order', key: 'lost' }]);
      const before = Date.now();
      const run = await runCli(['verify'], pipeline.processEnv());
      assert.equal(run.code, 3, run.stderr);
      // A run narrowed to one entity is recorded too, but is not the last verification.
      assert.equal((await runCli(['verify', '--entity', 'invoice'], pipeline.processEnv())).code, 0);

      const answer = await call('/api/verify');
      assert.equal(answer.statusCode, 200, answer.payload);
      const { startedAt, finishedAt, ...found } = answer.body.lastRun;
      assert.deepEqual(found, { checked: 1, missing: 1, stale: 0, different: 0, repaired: null, passed: false });
      assert.ok(Date.parse(startedAt) >= before - 1000 && Date.parse(finishedAt) >= Date.parse(startedAt) && Date.parse(finishedAt) <= Date.now(), `${startedAt} to ${finishedAt}`);
      assertRefused(await call('/api/verify', { token: null }), 401, 'sign in with an outbox page token');
    });
  });

  describe('serving the page', () => {
    let webRoot: string;

    before(() => {
      webRoot = mkdtempSync(join(tmpdir(), 'outbox-sync-web-'));
      mkdirSync(join(webRoot, 'assets'));
      writeFileSync(join(webRoot, 'index.html'), '<!doctype html><html lang="en"><title>outbox</title><script type="module" src="/assets/app-1.js"></script></html>');
      writeFileSync(join(webRoot, 'assets', 'app-1.js'), 'console.log(1)');
    });

    after(() => rmSync(webRoot, { recursive: true, force: true }));

    beforeEach(async () => {
      pipeline = await TestPipeline.create({ env: UI_ENV });
    });

    afterEach(async () => {
      await app.close();
      await pipeline.close();
    });

    it('serves the built app without a token, index.html for its routes, with the security headers', async () => {
      await start({ webRoot });
      for (const url of ['/', '/messages', '/messages/42?status=dead']) {
        const page = await app.inject({ url });
        assert.equal(page.statusCode, 200, url);
        assert.match(page.headers['content-type'] as string, /^text\/html/);
        assert.match(page.payload, /<html lang="en">/);
        assert.equal(page.headers['cache-control'], 'no-cache');
        assert.equal(
          page.headers['content-security-policy'],
          "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        );
        assert.equal(page.headers['x-content-type-options'], 'nosniff');
        assert.equal(page.headers['referrer-policy'], 'no-referrer');
      }
      const script = await app.inject({ url: '/assets/app-1.js' });
      assert.equal(script.statusCode, 200);
      assert.match(script.headers['content-type'] as string, /javascript/);
      assert.equal(script.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.equal((await app.inject({ url: '/assets/gone-2.js' })).statusCode, 404);
      assert.equal((await app.inject({ url: '/favicon.ico' })).statusCode, 404);
      const api = await app.inject({ url: '/api/nothing', headers: { authorization: `Bearer ${ALICE}` } });
      assert.equal(api.statusCode, 404);
      assert.deepEqual(api.json(), { error: 'no route GET /api/nothing' });
      const status = await app.inject({ url: '/api/status', headers: { authorization: `Bearer ${ALICE}` } });
      assert.equal(status.headers['cache-control'], 'no-store');
      assert.equal(status.headers['x-content-type-options'], 'nosniff');
    });

    it('starts without a built app and answers / with 503 saying how to build it', async () => {
      await start({ webRoot: join(webRoot, 'not-there') });
      const page = await app.inject({ url: '/' });
      assert.equal(page.statusCode, 503);
      assert.equal(page.payload, 'The outbox page was not built: run npm run build\n');
      assert.equal((await app.inject({ url: '/api/status', headers: { authorization: `Bearer ${ALICE}` } })).statusCode, 200);
    });
  });

  describe('with the pipeline running on Temporal', () => {
    beforeEach(async () => {
      pipeline = await TestPipeline.create({ env: UI_ENV });
      await pipeline.startWorker();
      pipeline.startDispatcher();
    });

    afterEach(async () => {
      await app.close();
      await pipeline.close();
    });

    it('shows the pipeline\'s transitions and its executions in Temporal, and a retry by the operator that ran again', async () => {
      await start({ executions: (workflowId) => listExecutions(pipeline.client, workflowId) });
      const { outbox } = pipeline.stores;
      // Data a producer's plain SQL can store but the pipeline refuses: the message dies at once.
      const { rows } = await outbox.query(`INSERT INTO outbox_messages (entity, entity_key, data) VALUES ('order', 'bad', '[1, 2]') RETURNING id`);
      const bad = Number(rows[0].id);
      const good = await enqueue(outbox, { entity: 'order', key: 'good', data: { ok: true } });
      await pipeline.waitForStatus([good], ['completed']);
      await pipeline.waitForStatus([bad], ['dead']);

      const done = await waitFor('the completed run in Temporal visibility', async () => {
        const body = (await call(`/api/messages/${good}`)).body;
        return body.executions.length === 1 && body.executions[0].status === 'COMPLETED' ? body : undefined;
      });
      const workflowId = `${pipeline.config.workflowIdPrefix}${good}`;
      assert.equal(done.executionsError, null);
      const [run] = done.executions;
      assert.equal(run.url, `http://127.0.0.1:8233/namespaces/default/workflows/${workflowId}/${run.runId}/history`);
      assert.ok(Date.parse(run.closeTime) >= Date.parse(run.startTime));
      assert.deepEqual(
        done.history.map((h: any) => [h.from, h.to, h.attempts, h.actor]),
        [
          [null, 'pending', 0, null],
          ['pending', 'processing', 1, null],
          ['processing', 'completed', 1, null],
        ],
      );

      const retried = await call(`/api/messages/${bad}/retry`, { body: {} });
      assert.deepEqual(retried.body, { retried: [bad] });
      await waitFor('the retried message to die again', async () => {
        const m = await readMessage(outbox, bad);
        return m!.status === 'dead' && m!.executions === 1 ? true : undefined;
      });
      const again = await waitFor('both runs in Temporal visibility', async () => {
        const body = (await call(`/api/messages/${bad}`)).body;
        return body.executions.length === 2 && body.executions.every((e: any) => e.status === 'COMPLETED' || e.status === 'FAILED') ? body : undefined;
      });
      assert.ok(Date.parse(again.executions[0].startTime) >= Date.parse(again.executions[1].startTime), 'newest first');
      assert.notEqual(again.executions[0].runId, again.executions[1].runId);
      const steps = again.history.map((h: any) => [h.from, h.to, h.actor]);
      assert.deepEqual(steps, [
        [null, 'pending', null],
        // A permanent fault: processing → dead in one move.
        ['pending', 'processing', null],
        ['processing', 'dead', null],
        ['dead', 'pending', 'ui:alice'],
        ['pending', 'processing', null],
        ['processing', 'dead', null],
      ]);
      assert.match(again.history[2].error, /data: must be a JSON object/);
    });

    it('still shows a message, saying why, when Temporal cannot be reached', async () => {
      const unreachable = lazyTemporal(loadConfig({ TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` }));
      try {
        await start({ executions: unreachable.executions, executionsTimeoutMs: 3_000 });
        const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: 'k', data: {} });
        await pipeline.waitForStatus([id], ['completed']);
        const answer = await call(`/api/messages/${id}`);
        assert.equal(answer.statusCode, 200, answer.payload);
        assert.equal(answer.body.message.status, 'completed');
        assert.deepEqual(answer.body.executions, []);
        assert.match(answer.body.executionsError, /^Temporal cannot be reached: /);
      } finally {
        await unreachable.close();
      }
    });
  });

  describe('the ui command', () => {
    let child: ChildProcess | undefined;

    beforeEach(async () => {
      pipeline = await TestPipeline.create({ env: UI_ENV });
    });

    afterEach(async () => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      child = undefined;
      await pipeline.close();
    });

    it('serves the API over HTTP until SIGTERM, then exits 0', async () => {
      const port = await freePort();
      child = spawn(BIN, ['ui'], { env: pipeline.processEnv({ OUTBOX_SYNC_UI_PORT: String(port) }), stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout!.on('data', (chunk) => (output += chunk));
      child.stderr!.on('data', (chunk) => (output += chunk));
      const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
      await waitFor('the page to listen', async () => (/outbox page listening/.test(output) ? true : undefined));
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await fetch(`${base}/api/status`)).status, 401);
      const status = await fetch(`${base}/api/status`, { headers: { authorization: `Bearer ${BOB}` } });
      assert.deepEqual(await status.json(), await readStatus(pipeline.stores.outbox, pipeline.config));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, output);
      assert.match(output, /outbox page stopped/);
      assert.doesNotMatch(output, new RegExp(`${ALICE}|${BOB}`), 'no token in the logs');
    });

    it('exits 2 with one line when OUTBOX_SYNC_UI_TOKENS is empty', async () => {
      child = spawn(BIN, ['ui'], {
        env: pipeline.processEnv({ OUTBOX_SYNC_UI_TOKENS: '', OUTBOX_SYNC_UI_OPERATORS: '', OUTBOX_SYNC_UI_PORT: '0' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (chunk) => (stderr += chunk));
      const code = await new Promise((resolve) => child!.once('exit', resolve));
      assert.equal(code, 2);
      assert.equal(stderr, 'outbox-sync: OUTBOX_SYNC_UI_TOKENS: the outbox page needs at least one name=token pair\n');
    });
  });
});
