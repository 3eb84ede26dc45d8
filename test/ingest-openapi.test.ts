/**
 * The ingest API's OpenAPI document (servers/ingest/openapi.ts): docs/openapi.json is what the server
 * generates, and the document tells the truth: every status code it lists for a route is one the real
 * server answers (over real HTTP, on a real outbox) in a case that provokes it, no case answers a code it
 * does not list, and every answer validates against the documented schema, media type and headers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pgSettings } from '../stores/postgres/connect';
import { buildIngestServer } from '../servers/ingest/ingest-server';
import { OPENAPI_DOC_PATH, openApiDocument } from '../servers/ingest/openapi';
import { TestPipeline } from './support/pipeline';
import { freePort } from './support/stack';

const PRESS_A = 'press-a-token-0123456789abcdef';
const PRESS_B = 'press-b-token-0123456789abcdef';

interface Documented {
  description: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema: unknown }>;
}
type Document = { paths: Record<string, Record<string, { responses: Record<string, Documented> }>> };

function readDocFile(): Document {
  return JSON.parse(readFileSync(OPENAPI_DOC_PATH, 'utf8')) as Document;
}

/** A case that provokes one answer: the route as the document names it, and the request that provokes it. */
interface Case {
  route: `${'GET' | 'POST'} ${string}`;
  why: string;
  send: () => Promise<Response>;
}

describe('ingest: the OpenAPI document', () => {
  it('docs/openapi.json is the document the server generates (npm run docs:openapi writes it)', async () => {
    assert.deepEqual(readDocFile(), JSON.parse(JSON.stringify(await openApiDocument())), 'docs/openapi.json is stale: run npm run docs:openapi');
  });

  describe('against the server on a real outbox', () => {
    let pipeline: TestPipeline;
    let app: FastifyInstance;
    let down: FastifyInstance;
    let downPool: pg.Pool;
    let base = '';
    let downBase = '';

    before(async () => {
      pipeline = await TestPipeline.create({ env: { INGEST_TOKENS: `press-a=${PRESS_A},press-b=${PRESS_B}`, INGEST_MAX_BODY_BYTES: '65536' } });
      app = buildIngestServer({ outbox: pipeline.stores.outbox }, pipeline.config);
      // A second server whose outbox database does not answer: a port nothing listens on.
      const url = new URL(pipeline.config.outboxDatabaseUrl);
      url.host = `127.0.0.1:${await freePort()}`;
      downPool = new pg.Pool(pgSettings(url.toString(), { max: 1, connectionTimeoutMillis: 1_000 }));
      downPool.on('error', () => undefined);
      down = buildIngestServer({ outbox: downPool }, pipeline.config, { onUnavailable: () => undefined, healthTimeoutMs: 1_000 });
      const port = async (server: FastifyInstance) => {
        await server.listen({ port: 0, host: '127.0.0.1' });
        return `http://127.0.0.1:${(server.server.address() as { port: number }).port}`;
      };
      base = await port(app);
      downBase = await port(down);
    });

    after(async () => {
      await app?.close();
      await down?.close();
      await downPool?.end();
      await pipeline?.close();
    });

    const post = (body: string, { token = PRESS_A as string | null, type = 'application/json' as string | null, at = base } = {}) => {
      const headers: Record<string, string> = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (type) headers['content-type'] = type;
      return fetch(`${at}/v1/messages`, { method: 'POST', headers, body });
    };
    const get = (path: string, { token = PRESS_A as string | null, at = base } = {}) =>
      fetch(`${at}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const message = (key: string, extra: object = {}) => JSON.stringify({ entity: 'order', key, version: 3, data: { total: 12.5 }, ...extra });

    it('serves the document at GET /v1/openapi.json without a token', async () => {
      const answer = await fetch(`${base}/v1/openapi.json`);
      assert.equal(answer.status, 200);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await answer.json(), readDocFile());
    });

    it('answers every status code the document lists, each in a case that provokes it, as the document describes it', async () => {
      // The document this very server serves (the test above holds docs/openapi.json to it).
      const doc = (await (await fetch(`${base}/v1/openapi.json`)).json()) as Document;
      const ajv = new Ajv2020({ allErrors: true, strict: true });
      addFormats(ajv);
      // The whole document by its name, so that each answer's schema is found by its JSON pointer and its
      // $refs into components.schemas resolve; its own top-level fields are no keywords to check.
      ajv.addVocabulary(Object.keys(doc));
      ajv.addSchema(doc, 'openapi.json');
      const pointer = (...parts: string[]) => parts.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

      const { id: own } = (await (await post(message('own', { idempotencyKey: 'pay-own' }))).json()) as { id: number };
      const { id: othersId } = (await (await post(message('theirs'), { token: PRESS_B })).json()) as { id: number };
      // One message as it stands after a failed execution, so that the nullable fields hold values too.
      const { id: failedId } = (await (await post(message('failed'))).json()) as { id: number };
      await pipeline.stores.outbox.query(
        `UPDATE outbox_messages SET status = 'failed', executions = 1, last_error = 'persistToTarget: the target did not answer', workflow_id = $2 WHERE id = $1`,
        [failedId, `${pipeline.config.workflowIdPrefix}${failedId}`],
      );

      const cases: Case[] = [
        { route: 'POST /v1/messages', why: 'one message', send: () => post(message('one')) },
        { route: 'POST /v1/messages', why: 'a batch', send: () => post(`[${message('b1')},${message('b2', { op: 'delete', data: undefined })}]`) },
        { route: 'POST /v1/messages', why: 'an invalid message', send: () => post(JSON.stringify({ entity: 'order', key: '1', data: [1] })) },
        { route: 'POST /v1/messages', why: 'a body that is not JSON', send: () => post('{"entity":') },
        { route: 'POST /v1/messages', why: 'no token', send: () => post(message('1'), { token: null }) },
        { route: 'POST /v1/messages', why: 'another source', send: () => post(message('1', { source: 'press-b' })) },
        { route: 'POST /v1/messages', why: 'an idempotency key reused with another body', send: () => post(message('own', { idempotencyKey: 'pay-own', version: 4 })) },
        { route: 'POST /v1/messages', why: 'a body over INGEST_MAX_BODY_BYTES', send: () => post(message('big', { data: { blob: 'x'.repeat(70_000) } })) },
        { route: 'POST /v1/messages', why: 'text/plain', send: () => post(message('1'), { type: 'text/plain' }) },
        { route: 'POST /v1/messages', why: 'the outbox database down', send: () => post(message('1'), { at: downBase }) },
        { route: 'GET /v1/messages/{id}', why: 'a pending message', send: () => get(`/v1/messages/${own}`) },
        { route: 'GET /v1/messages/{id}', why: 'a failed message', send: () => get(`/v1/messages/${failedId}`) },
        { route: 'GET /v1/messages/{id}', why: 'an id that is not one', send: () => get('/v1/messages/12abc') },
        { route: 'GET /v1/messages/{id}', why: 'an unknown token', send: () => get(`/v1/messages/${own}`, { token: 'not-a-known-token-at-all' }) },
        { route: 'GET /v1/messages/{id}', why: "another source's message", send: () => get(`/v1/messages/${othersId}`) },
        { route: 'GET /v1/messages/{id}', why: 'no such message', send: () => get('/v1/messages/999999') },
        { route: 'GET /v1/messages/{id}', why: 'the outbox database down', send: () => get(`/v1/messages/${own}`, { at: downBase }) },
        { route: 'GET /healthz', why: 'the outbox answers', send: () => get('/healthz', { token: null }) },
        { route: 'GET /healthz', why: 'the outbox database down', send: () => get('/healthz', { token: null, at: downBase }) },
        { route: 'GET /metrics', why: 'a scrape', send: () => get('/metrics', { token: null }) },
      ];

      const answered = new Set<string>();
      for (const { route, why, send } of cases) {
        const [method, path] = route.split(' ') as [string, string];
        const answer = await send();
        const text = await answer.text();
        const seen = `${route} (${why}) answered ${answer.status} ${text.slice(0, 200)}`;
        const documented = doc.paths[path]?.[method.toLowerCase()]?.responses[String(answer.status)];
        assert.ok(documented, `${seen}: a status the document does not list`);
        answered.add(`${route} ${answer.status}`);

        for (const header of Object.keys(documented.headers ?? {})) assert.ok(answer.headers.has(header), `${seen}: no ${header} header`);
        const media = (answer.headers.get('content-type') ?? '').split(';')[0]!.trim();
        assert.ok(documented.content?.[media], `${seen}: Content-Type ${media}, documented ${Object.keys(documented.content ?? {}).join(', ')}`);
        const validate = ajv.getSchema(`openapi.json#/${pointer('paths', path, method.toLowerCase(), 'responses', String(answer.status), 'content', media, 'schema')}`)!;
        const body: unknown = media === 'application/json' ? JSON.parse(text) : text;
        assert.ok(validate(body), `${seen}: does not match the documented schema: ${ajv.errorsText(validate.errors)}`);
      }

      const listed = Object.entries(doc.paths).flatMap(([path, methods]) =>
        Object.entries(methods).flatMap(([method, operation]) => Object.keys(operation.responses).map((status) => `${method.toUpperCase()} ${path} ${status}`)),
      );
      assert.deepEqual([...answered].sort(), listed.sort(), 'every listed status is answered by a case');
    });
  });
});
