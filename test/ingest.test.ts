/**
 * `ingest`, the HTTP server for devices: a real listening server spoken to over real HTTP (Node's fetch),
 * storing into a real outbox; one case runs the whole pipeline behind it, and one the `ingest` process.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pgSettings } from '../stores/postgres/connect';
import { packageRoot } from '../config/package-root';
import { buildIngestServer } from '../servers/ingest/run-ingest';
import { InvalidMessageError, validateMessage } from '../stores/outbox/validate';
import { readMessage } from '../stores/outbox/messages';
import { readRecord } from '../stores/target/synced-records';
import { FaultProxy } from './support/fault-proxy';
import { TestPipeline, waitFor } from './support/pipeline';
import { freePort, getStack } from './support/stack';

const BIN = join(packageRoot, 'bin', 'outbox-sync');
const PRESS_A = 'press-a-token-0123456789abcdef';
const PRESS_B = 'press-b-token-0123456789abcdef';
const TOKENS = `press-a=${PRESS_A},press-b=${PRESS_B}`;
const JSON_TYPE = 'application/json';

interface Answer {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

async function call(url: string, init: { method?: string; token?: string | null; contentType?: string | null; body?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (init.token !== null) headers.authorization = `Bearer ${init.token ?? PRESS_A}`;
  if (init.contentType !== null && init.body !== undefined) headers['content-type'] = init.contentType ?? JSON_TYPE;
  const response = await fetch(url, { method: init.method ?? (init.body === undefined ? 'GET' : 'POST'), headers, body: init.body });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** A refusal as the contract has it: the status, and one JSON line with the reason (and the field). */
function assertRefused(answer: Answer, status: number, error: RegExp, field?: string): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  assert.doesNotMatch(answer.text, /\n/);
  assert.match(answer.body.error, error);
  assert.equal(answer.body.field, field);
}

describe('ingest: the HTTP server for devices, over real HTTP', () => {
  let pipeline: TestPipeline;
  let app: FastifyInstance;
  let base: string;

  beforeEach(async () => {
    pipeline = await TestPipeline.create({ env: { INGEST_TOKENS: TOKENS, INGEST_MAX_BODY_BYTES: '65536' } });
    app = buildIngestServer({ outbox: pipeline.stores.outbox }, pipeline.config);
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });

  afterEach(async () => {
    await app.close();
    await pipeline.close();
  });

  async function countMessages(): Promise<number> {
    const { rows } = await pipeline.stores.outbox.query('SELECT count(*)::int AS n FROM outbox_messages');
    return rows[0].n;
  }

  it('answers 202 {id} for one message, committed under the token\'s source before the answer', async () => {
    const answer = await call(`${base}/v1/messages`, { body: JSON.stringify({ entity: 'order', key: '42', version: 7, data: { total: 9.5 } }) });
    assert.equal(answer.status, 202, answer.text);
    assert.deepEqual(Object.keys(answer.body), ['id']);
    // Read on another connection: visible as soon as the answer is, so it was committed.
    const reader = new pg.Client(pgSettings(pipeline.config.outboxDatabaseUrl));
    await reader.connect();
    try {
      const { rows } = await reader.query('SELECT source, entity, entity_key, version, data, status FROM outbox_messages WHERE id = $1', [answer.body.id]);
      assert.deepEqual(rows[0], { source: 'press-a', entity: 'order', entity_key: '42', version: '7', data: { total: 9.5 }, status: 'pending' });
    } finally {
      await reader.end();
    }
  });

  it('answers 202 {ids} for a batch, in the order given, and accepts the token\'s own source named in the body', async () => {
    const batch = [
      { entity: 'order', key: '1', data: { n: 1 } },
      { entity: 'order', key: '2', data: { n: 2 }, source: 'press-b' },
      { entity: 'order', key: '1', op: 'delete' },
    ];
    const answer = await call(`${base}/v1/messages`, { token: PRESS_B, body: JSON.stringify(batch) });
    assert.equal(answer.status, 202, answer.text);
    assert.equal(answer.body.ids.length, 3);
    const stored = await Promise.all(answer.body.ids.map((id: number) => readMessage(pipeline.stores.outbox, id)));
    assert.deepEqual(
      stored.map((m) => [m!.key, m!.op, m!.source]),
      [
        ['1', 'upsert', 'press-b'],
        ['2', 'upsert', 'press-b'],
        ['1', 'delete', 'press-b'],
      ],
    );
  });

  it('stores a batch all or none: one invalid message (400) or one idempotency conflict (409) stores nothing', async () => {
    const first = await call(`${base}/v1/messages`, { body: JSON.stringify({ entity: 'order', key: 'x', data: { n: 1 }, idempotencyKey: 'pay-x' }) });
    assert.equal(first.status, 202);
    const invalid = [
      { entity: 'order', key: 'a', data: { n: 1 } },
      { entity: 'order', key: 'b', data: { n: 2 } },
      { entity: 'order', key: 'c', data: [3] },
    ];
    assertRefused(await call(`${base}/v1/messages`, { body: JSON.stringify(invalid) }), 400, /^\[2\]\.data: must be a JSON object$/, '[2].data');
    const conflicting = [
      { entity: 'order', key: 'a', data: { n: 1 } },
      { entity: 'order', key: 'x', data: { n: 2 }, idempotencyKey: 'pay-x' },
    ];
    assertRefused(await call(`${base}/v1/messages`, { body: JSON.stringify(conflicting) }), 409, /pay-x.*different body/, 'idempotencyKey');
    assert.equal(await countMessages(), 1, 'only the first message is stored');
  });

  it('refuses an invalid message with 400 in the words of the validator the library and CLI use', async () => {
    const cases: unknown[] = [
      { entity: '', key: 'k', data: {} },
      { entity: 'order', key: 'k' },
      { entity: 'order', key: 'k', data: { n: 1 }, colour: 'red' },
      { entity: 'order', key: 'k', version: -1, data: {} },
      { entity: 'order', key: 'k', op: 'merge', data: {} },
      'just a string',
    ];
    for (const input of cases) {
      let expected: InvalidMessageError | undefined;
      try {
        validateMessage(input);
      } catch (err) {
        expected = err as InvalidMessageError;
      }
      assert.ok(expected instanceof InvalidMessageError);
      const answer = await call(`${base}/v1/messages`, { body: JSON.stringify(input) });
      assertRefused(answer, 400, new RegExp(`^${expected.message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`), expected.field || undefined);
    }
    assertRefused(await call(`${base}/v1/messages`, { body: '{"entity": "order",' }), 400, /not valid JSON/);
    assertRefused(await call(`${base}/v1/messages`, { body: '[]' }), 400, /at least one message/);
    assert.equal(await countMessages(), 0);
  });

  it('answers 401 without a token or with an unknown one, before reading the body', async () => {
    const body = JSON.stringify({ entity: 'order', key: '1', data: {} });
    const missing = await call(`${base}/v1/messages`, { token: null, body });
    assertRefused(missing, 401, /Authorization: Bearer/);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
    assertRefused(await call(`${base}/v1/messages`, { token: 'not-a-known-token-at-all', body }), 401, /not known/);
    assertRefused(await call(`${base}/v1/messages/1`, { token: null }), 401, /Authorization: Bearer/);
    // Unauthenticated, even a body that is not JSON is answered 401: nothing is parsed for a stranger.
    assertRefused(await call(`${base}/v1/messages`, { token: null, contentType: 'text/plain', body: 'hello' }), 401, /Authorization/);
    assert.equal(await countMessages(), 0);
  });

  it('answers 403 to a token writing for another source or reading another source\'s message', async () => {
    const write = await call(`${base}/v1/messages`, { token: PRESS_A, body: JSON.stringify({ entity: 'order', key: '1', data: {}, source: 'press-b' }) });
    assertRefused(write, 403, /writes for source "press-a", not "press-b"/, 'source');
    const inBatch = await call(`${base}/v1/messages`, {
      body: JSON.stringify([
        { entity: 'order', key: '1', data: {} },
        { entity: 'order', key: '2', data: {}, source: 'press-b' },
      ]),
    });
    assertRefused(inBatch, 403, /^\[1\]\.source: /, '[1].source');
    assert.equal(await countMessages(), 0);

    const own = await call(`${base}/v1/messages`, { token: PRESS_B, body: JSON.stringify({ entity: 'order', key: 'b-secret', data: { secret: 'b' } }) });
    const read = await call(`${base}/v1/messages/${own.body.id}`, { token: PRESS_A });
    assertRefused(read, 403, /belongs to another source/);
    assert.doesNotMatch(read.text, /b-secret|press-b/);
    // A message a producer inserted with plain SQL has no source: no device may read it.
    const { rows } = await pipeline.stores.outbox.query(`INSERT INTO outbox_messages (entity, entity_key, data) VALUES ('order', 'sql', '{}') RETURNING id`);
    assertRefused(await call(`${base}/v1/messages/${rows[0].id}`), 403, /another source/);
  });

  it('answers 409 when an idempotency key comes back with another body, and the first id when it comes back with the same', async () => {
    const body = { entity: 'order', key: '7', version: 3, data: { paid: true }, idempotencyKey: 'pay-7' };
    const first = await call(`${base}/v1/messages`, { body: JSON.stringify(body) });
    const again = await call(`${base}/v1/messages`, { body: JSON.stringify({ ...body, data: { paid: true } }) });
    assert.equal(first.status, 202);
    assert.equal(again.status, 202);
    assert.equal(again.body.id, first.body.id);
    const conflict = await call(`${base}/v1/messages`, { body: JSON.stringify({ ...body, data: { paid: false } }) });
    assertRefused(conflict, 409, new RegExp(`"pay-7" was already used for message ${first.body.id} with a different body`), 'idempotencyKey');
    // Keys are per source: another device may use the same key for its own message.
    const other = await call(`${base}/v1/messages`, { token: PRESS_B, body: JSON.stringify({ ...body, data: { paid: false } }) });
    assert.equal(other.status, 202);
    assert.notEqual(other.body.id, first.body.id);
    assert.equal(await countMessages(), 2);
  });

  it('answers 413 to a body over INGEST_MAX_BODY_BYTES, storing nothing', async () => {
    const big = JSON.stringify({ entity: 'order', key: '1', data: { blob: 'x'.repeat(70_000) } });
    assertRefused(await call(`${base}/v1/messages`, { body: big }), 413, /larger than the limit of 65536 bytes/);
    assert.equal(await countMessages(), 0);
  });

  it('answers 415 to a body that is not JSON, or has no Content-Type', async () => {
    const json = JSON.stringify({ entity: 'order', key: '1', data: {} });
    assertRefused(await call(`${base}/v1/messages`, { contentType: 'text/plain', body: json }), 415, /Content-Type must be application\/json/);
    assertRefused(await call(`${base}/v1/messages`, { contentType: 'application/x-www-form-urlencoded', body: 'entity=order' }), 415, /application\/json/);
    assertRefused(await call(`${base}/v1/messages`, { contentType: null, body: json }), 415, /application\/json/);
    assert.equal((await call(`${base}/v1/messages`, { contentType: 'application/json; charset=utf-8', body: json })).status, 202);
    assert.equal(await countMessages(), 1);
  });

  it('answers GET /v1/messages/:id with the status, and 404 or 400 for an id that is not there', async () => {
    const posted = await call(`${base}/v1/messages`, { body: JSON.stringify({ entity: 'order', key: '5', data: { n: 5 } }) });
    const answer = await call(`${base}/v1/messages/${posted.body.id}`);
    assert.equal(answer.status, 200, answer.text);
    const { createdAt, updatedAt, ...rest } = answer.body;
    assert.deepEqual(rest, {
      id: posted.body.id,
      source: 'press-a',
      entity: 'order',
      key: '5',
      op: 'upsert',
      version: String(posted.body.id),
      status: 'pending',
      attempts: 0,
      lastError: null,
      workflowId: null,
      temporalUi: null,
      target: { database: 'TARGET_DATABASE_URL', table: 'synced_records' },
      completedAt: null,
      overdueAt: null,
    });
    assert.ok(Date.parse(createdAt) <= Date.parse(updatedAt));
    assert.equal(answer.body.data, undefined, 'the data is not echoed');
    assertRefused(await call(`${base}/v1/messages/999999`), 404, /message 999999 does not exist/);
    assertRefused(await call(`${base}/v1/messages/12abc`), 400, /is not a message id/, 'id');
    assertRefused(await call(`${base}/v1/nothing-here`), 404, /no route/);
  });

  it('serves /healthz: 200 while the outbox answers, 503 naming it while it does not', async () => {
    const ok = await call(`${base}/healthz`, { token: null });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { status: 'ok', checks: { outbox: 'ok' } });

    // A second server whose outbox is reached through a proxy the test can cut.
    const postgres = new URL(getStack().postgresUrl);
    const proxy = await FaultProxy.start(postgres.hostname, Number(postgres.port || 5432));
    const url = new URL(pipeline.config.outboxDatabaseUrl);
    url.host = `127.0.0.1:${proxy.port}`;
    const outbox = new pg.Pool(pgSettings(url.toString(), { max: 2, connectionTimeoutMillis: 1_000 }));
    outbox.on('error', () => undefined);
    const cut = buildIngestServer({ outbox }, pipeline.config, { healthTimeoutMs: 1_500 });
    try {
      await cut.listen({ port: 0, host: '127.0.0.1' });
      const cutBase = `http://127.0.0.1:${(cut.server.address() as { port: number }).port}`;
      assert.equal((await call(`${cutBase}/healthz`, { token: null })).status, 200);
      await proxy.refuse();
      const down = await call(`${cutBase}/healthz`, { token: null });
      assert.equal(down.status, 503, down.text);
      assert.equal(down.body.status, 'unavailable');
      assert.match(down.body.checks.outbox, /^down: /);
      await proxy.restore();
      await waitFor('the outbox to answer again', async () => ((await call(`${cutBase}/healthz`, { token: null })).status === 200 ? true : undefined), 15_000);
    } finally {
      await cut.close();
      await outbox.end();
      await proxy.close();
    }
  });

  it('serves /metrics in the Prometheus text format', async () => {
    const answer = await call(`${base}/metrics`, { token: null });
    assert.equal(answer.status, 200);
    assert.match(answer.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(answer.text, /^# HELP process_cpu_user_seconds_total /m);
    assert.match(answer.text, /^nodejs_heap_size_used_bytes \d/m);
  });

  it('takes a POSTed message to completed through worker and dispatcher, and GET shows it with its workflow', async function () {
    this.timeout(90_000);
    await pipeline.startWorker();
    pipeline.startDispatcher();
    const posted = await call(`${base}/v1/messages`, { body: JSON.stringify({ entity: 'order', key: 'e2e', version: 3, data: { status: 'paid' } }) });
    assert.equal(posted.status, 202, posted.text);
    const done = await waitFor('GET to show the message completed', async () => {
      const answer = await call(`${base}/v1/messages/${posted.body.id}`);
      return answer.body.status === 'completed' ? answer.body : undefined;
    });
    assert.equal(done.attempts, 1);
    assert.equal(done.lastError, null);
    assert.equal(done.workflowId, `${pipeline.config.workflowIdPrefix}${posted.body.id}`);
    assert.equal(done.temporalUi, `${pipeline.config.temporalUiUrl}/namespaces/${pipeline.config.temporalNamespace}/workflows/${encodeURIComponent(done.workflowId)}`);
    assert.ok(done.completedAt);
    const record = await readRecord(pipeline.stores.target, 'order', 'e2e');
    assert.deepEqual([record!.version, record!.data], ['3', { status: 'paid' }]);
  });
});

describe('the ingest process', () => {
  let pipeline: TestPipeline;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
  });

  afterEach(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
    await pipeline.close();
  });

  it('serves until SIGTERM, answers the request in flight, refuses new connections, and exits 0', async function () {
    this.timeout(60_000);
    const port = await freePort();
    child = spawn(BIN, ['ingest'], {
      env: pipeline.processEnv({ INGEST_TOKENS: TOKENS, INGEST_PORT: String(port) }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    await waitFor('ingest to listen', async () => (/ingest listening/.test(output) ? true : undefined));
    const base = `http://127.0.0.1:${port}`;
    const first = await call(`${base}/v1/messages`, { body: JSON.stringify({ entity: 'order', key: 'p1', data: { n: 1 } }) });
    assert.equal(first.status, 202, first.text);

    // A request whose body is only half sent when SIGTERM comes.
    const body = JSON.stringify({ entity: 'order', key: 'in-flight', data: { n: 2 } });
    const inFlight = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'POST', path: '/v1/messages', agent: false, headers: { authorization: `Bearer ${PRESS_A}`, 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 10));
      setTimeout(() => {
        child!.kill('SIGTERM');
        void waitFor('ingest to begin stopping', async () => (/ingest stopping/.test(output) ? true : undefined)).then(() => req.end(body.slice(10)), reject);
      }, 200);
    });
    const answer = await inFlight;
    assert.equal(answer.status, 202, answer.text);
    const id = JSON.parse(answer.text).id;
    assert.equal((await readMessage(pipeline.stores.outbox, id))!.key, 'in-flight');
    assert.equal(await exited, 0, output);
    assert.match(output, /ingest stopped/);
    await assert.rejects(fetch(`${base}/healthz`), 'nothing listens any more');
  });

  it('answers 413 to a 5 MB body every time, sent with its length or in chunks, never a broken connection', async function () {
    this.timeout(120_000);
    const port = await freePort();
    child = spawn(BIN, ['ingest'], {
      env: pipeline.processEnv({ INGEST_TOKENS: TOKENS, INGEST_PORT: String(port), INGEST_MAX_BODY_BYTES: String(1024 * 1024) }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stderr!.on('data', (chunk) => (output += chunk));
    await waitFor('ingest to listen', async () => (/ingest listening/.test(output) ? true : undefined));
    const big = new TextEncoder().encode(JSON.stringify({ entity: 'order', key: '1', data: { blob: 'x'.repeat(5_000_000) } }));
    const chunked = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < big.length; at += 64 * 1024) controller.enqueue(big.subarray(at, at + 64 * 1024));
          controller.close();
        },
      });
    // A server that closes while the client still sends makes the client fail with EPIPE before it reads
    // the reply: in a separate process, that happened on about every second try.
    for (let i = 0; i < 30; i++) {
      for (const body of [big, chunked()]) {
        const how = body instanceof ReadableStream ? 'chunked' : 'with its length';
        const response = await fetch(`http://127.0.0.1:${port}/v1/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${PRESS_A}`, 'content-type': JSON_TYPE },
          body,
          ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
        } as RequestInit).catch((err: Error) => assert.fail(`try ${i + 1}, ${how}: ${(err.cause as Error)?.message ?? err.message}`));
        assert.equal(response.status, 413, `try ${i + 1}, ${how}`);
        assert.match(((await response.json()) as { error: string }).error, /larger than the limit of 1048576 bytes/);
      }
    }
    const { rows } = await pipeline.stores.outbox.query('SELECT count(*)::int AS n FROM outbox_messages');
    assert.equal(rows[0].n, 0);
  });

  it('exits 2 with one line when INGEST_TOKENS is empty', async () => {
    child = spawn(BIN, ['ingest'], { env: pipeline.processEnv({ INGEST_PORT: '0' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => child!.once('exit', resolve));
    assert.equal(code, 2);
    assert.equal(stderr, 'outbox-sync: INGEST_TOKENS: ingest needs at least one source=token pair\n');
  });
});
