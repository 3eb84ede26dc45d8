/**
 * Every case of the bad-input catalogue (test/support/bad-input.ts) through every channel that can carry
 * it: the library (`enqueue`, `enqueueBatch`), the command line as a process (`enqueue` with flags and
 * with `--ndjson`) and `POST /v1/messages` over real HTTP. A refused case gives its one-line error (exit 2
 * on the command line, a 4xx over HTTP) and stores nothing; an accepted case stores the message as given.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { enqueue, enqueueBatch } from '../stores/outbox/enqueue';
import type { MessageInput } from '../stores/outbox/validate';
import type { FastifyInstance } from 'fastify';
import { buildIngestServer } from '../servers/ingest/run-ingest';
import { BAD_INPUT_CASES, CHANNELS, DOC_PATH, bodyFor, expectedError, flagsFor, httpBodyFor, renderDoc, type BadInputCase, type Channel } from './support/bad-input';
import { TestPipeline } from './support/pipeline';
import { runCli } from './support/processes';

const HTTP_SOURCE = 'device-1';
const HTTP_TOKEN = 'bad-input-test-token-0123456789';

/** What one attempt gave: the ids stored or the error line. */
type Outcome = { ids: number[] } | { error: string };

describe('bad input, catalogued: each case through the library, the command line and HTTP', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let dir: string;
  let ingest: FastifyInstance;
  let ingestUrl: string;

  before(async () => {
    pipeline = await TestPipeline.create({ env: { INGEST_TOKENS: `${HTTP_SOURCE}=${HTTP_TOKEN}` } });
    dir = mkdtempSync(join(tmpdir(), 'outbox-sync-bad-input-'));
    ingest = buildIngestServer({ outbox: pipeline.stores.outbox }, pipeline.config);
    ingestUrl = `${await ingest.listen({ port: 0, host: '127.0.0.1' })}/v1/messages`;
  });

  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await ingest?.close();
    await pipeline?.close();
  });

  it('docs/bad-input.md is written from the current cases (npm run docs:bad-input)', () => {
    assert.equal(readFileSync(DOC_PATH, 'utf8'), renderDoc());
  });

  it('the catalogue holds at least 30 cases, each named once', () => {
    assert.ok(BAD_INPUT_CASES.length >= 30, `${BAD_INPUT_CASES.length} cases`);
    assert.equal(new Set(BAD_INPUT_CASES.map((c) => c.name)).size, BAD_INPUT_CASES.length);
  });

  async function count(): Promise<number> {
    const { rows } = await pipeline.stores.outbox.query<{ n: string }>('SELECT count(*) AS n FROM outbox_messages');
    return Number(rows[0]!.n);
  }

  const cli = (args: string[]) => runCli(args, pipeline.processEnv());

  /** Runs the command line; a refusal must be exit 2, nothing on stdout and exactly one line on stderr. */
  async function viaCli(args: string[]): Promise<Outcome> {
    const run = await cli(['enqueue', ...args]);
    if (run.code === 0) {
      assert.equal(run.stderr, '');
      return { ids: run.stdout.trim().split('\n').map(Number) };
    }
    assert.equal(run.code, 2, `exit code 2 for bad input (stderr: ${run.stderr})`);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^outbox-sync: [^\n]+\n$/, 'one line on stderr');
    return { error: run.stderr.slice('outbox-sync: '.length, -1) };
  }

  /** Posts the case; a refusal must be its 4xx with one JSON line `{"error", "field"?}`. */
  async function viaHttp(c: BadInputCase): Promise<Outcome> {
    const response = await fetch(ingestUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${HTTP_TOKEN}` },
      body: httpBodyFor(c),
    });
    const text = await response.text();
    const body = JSON.parse(text) as { id?: number; ids?: number[]; error?: string; field?: string };
    if (response.status === 202) return { ids: body.ids ?? [body.id!] };
    assert.equal(response.status, c.httpStatus ?? 400, text);
    assert.doesNotMatch(text, /\n/, 'one line');
    assert.deepEqual(Object.keys(body).filter((k) => k !== 'error' && k !== 'field'), []);
    return { error: body.error! };
  }

  async function viaLibrary(work: () => Promise<number | number[]>): Promise<Outcome> {
    try {
      const result = await work();
      return { ids: Array.isArray(result) ? result : [result] };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  function attempt(c: BadInputCase, channel: Channel): Promise<Outcome> {
    const db = pipeline.stores.outbox;
    switch (channel) {
      case 'library':
        return viaLibrary(() => enqueue(db, c.message as MessageInput));
      case 'batch':
        return viaLibrary(() => enqueueBatch(db, (c.batch ?? [c.message]) as MessageInput[]));
      case 'flags': {
        const flags = flagsFor(c);
        assert.ok(flags, 'the case can be given as flags, or says why not');
        return viaCli(flags);
      }
      case 'ndjson': {
        const file = join(dir, 'messages.ndjson');
        writeFileSync(file, bodyFor(c));
        return viaCli(['--ndjson', file]);
      }
      case 'http':
        return viaHttp(c);
    }
  }

  for (const c of BAD_INPUT_CASES) {
    for (const channel of CHANNELS) {
      if (c.notOn?.[channel]) continue;
      const verb = 'refused' in c.expect ? 'refuses' : 'accepts';
      it(`${channel}: ${verb} ${c.name}`, async () => {
        // Idempotency keys are scoped to a source; over HTTP the source is the token's.
        if (c.before) await enqueue(pipeline.stores.outbox, { ...c.before, ...(channel === 'http' ? { source: HTTP_SOURCE } : {}) } as unknown as MessageInput);
        const before = await count();
        const outcome = await attempt(c, channel);
        const stored = (await count()) - before;
        if ('refused' in c.expect) {
          assert.ok('error' in outcome, `refused, but stored as ${JSON.stringify(outcome)}`);
          const expected = expectedError(c, channel);
          if (typeof expected === 'string') assert.equal(outcome.error, expected);
          else assert.match(outcome.error, expected);
          assert.equal(stored, 0, 'nothing stored');
        } else {
          assert.ok('ids' in outcome, `accepted, but refused with: ${'error' in outcome ? outcome.error : ''}`);
          assert.equal(stored, c.expect.accepted.stored);
          const message = c.message as MessageInput;
          const { rows } = await pipeline.stores.outbox.query('SELECT entity, entity_key, version, data FROM outbox_messages WHERE id = $1', [outcome.ids[0]]);
          assert.deepEqual(rows[0], { entity: message.entity, entity_key: message.key, version: String(message.version ?? outcome.ids[0]), data: message.data });
        }
      });
    }
  }

  it('the outbox table is still there and whole after the SQL-looking input', async () => {
    const { rows } = await pipeline.stores.outbox.query<{ n: string }>(`SELECT count(*) AS n FROM outbox_messages WHERE entity LIKE 'order''; DROP TABLE%'`);
    assert.equal(Number(rows[0]!.n), 5);
  });
});
