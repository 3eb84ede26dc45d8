/**
 * Payload encryption: the AES-GCM codec on its own, then a real workflow run with it on, whose history, as
 * the Temporal server stores it, holds no plaintext of the message, and which the `codec-server` process
 * decrypts again over HTTP for an operator (and for nobody else); then failures, whose messages are
 * sealed as well, whether an activity or the workflow sandbox raised them.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, dataConverterFor } from '../temporal/data-converter';
import { dispatcherSettings } from '../dispatcher/run-dispatcher';
import { packageRoot } from '../config/package-root';
import { findTemporalBinary } from '../temporal/dev-server';
import { enqueue } from '../stores/outbox/enqueue';
import { readRecord } from '../stores/target/synced-records';
import { activitySettings, createSyncWorker } from '../worker/worker';
import { TestPipeline, waitFor } from './support/pipeline';
import { getStack } from './support/stack';

const BIN = join(packageRoot, 'bin', 'outbox-sync');
const K1 = { id: 'k1', key: randomBytes(32) };
const K2 = { id: 'k2', key: randomBytes(32) };
const keysSetting = (...keys: { id: string; key: Buffer }[]) => keys.map((k) => `${k.id}=${k.key.toString('base64')}`).join(',');
const OPERATOR = 'operator-token-0123456789abcdef';
const DEVICE = 'device-token-0123456789abcdef';

const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString();

describe('the AES-256-GCM payload codec', () => {
  const plain: Payload[] = [defaultPayloadConverter.toPayload({ entity: 'order', key: '42' })];

  it('seals a payload whole, key id in the metadata, and opens it again', async () => {
    const codec = new AesGcmCodec([K1]);
    const [sealed] = await codec.encode(plain);
    assert.equal(text(sealed!.metadata!.encoding), ENCRYPTED_ENCODING);
    assert.equal(text(sealed!.metadata![KEY_ID_METADATA]), 'k1');
    assert.ok(!Buffer.from(sealed!.data!).includes('order'));
    assert.deepEqual(await codec.decode([sealed!]), plain.map((p) => temporal.api.common.v1.Payload.decode(temporal.api.common.v1.Payload.encode(p).finish())));
    const [again] = await codec.encode(plain);
    assert.ok(!Buffer.from(again!.data!).equals(Buffer.from(sealed!.data!)), 'a fresh IV for every payload');
  });

  it('encrypts under the first key after a rotation and still opens payloads sealed under an older one', async () => {
    const [old] = await new AesGcmCodec([K1]).encode(plain);
    const rotated = new AesGcmCodec([K2, K1]);
    const [fresh] = await rotated.encode(plain);
    assert.equal(text(fresh!.metadata![KEY_ID_METADATA]), 'k2');
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode([old!]))[0]!), { entity: 'order', key: '42' });
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode([fresh!]))[0]!), { entity: 'order', key: '42' });
  });

  it('refuses a payload under a key it lacks, and one that was tampered with; lets plain payloads through', async () => {
    const [sealed] = await new AesGcmCodec([K1]).encode(plain);
    await assert.rejects(new AesGcmCodec([K2]).decode([sealed!]), /key id "k1", which is not configured/);
    const tampered = Buffer.from(sealed!.data!);
    tampered[20] = tampered[20]! ^ 1;
    await assert.rejects(new AesGcmCodec([K1]).decode([{ ...sealed!, data: tampered }]), /does not authenticate/);
    // Passing a k1 payload off as k2's fails too: the key id is authenticated with the data.
    const relabelled = { ...sealed!, metadata: { ...sealed!.metadata, [KEY_ID_METADATA]: Buffer.from('k2') } };
    await assert.rejects(new AesGcmCodec([K2, { id: 'k1', key: K2.key }]).decode([relabelled]), /does not authenticate/);
    assert.deepEqual(await new AesGcmCodec([K1]).decode(plain), plain);
  });
});

describe('payload encryption through the pipeline, the Temporal server and the codec server', () => {
  let pipeline: TestPipeline;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    pipeline = await TestPipeline.create({ env: { OUTBOX_SYNC_CODEC_KEYS: keysSetting(K1) } });
  });

  afterEach(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    children.length = 0;
    await pipeline.close();
  });

  it('keeps the message out of the stored history, and the codec server shows it to an operator after a key rotation', async function () {
    this.timeout(90_000);
    const client = await startEncryptedPipeline(pipeline);
    const entity = `entity-${randomBytes(6).toString('hex')}`;
    const key = `key-${randomBytes(6).toString('hex')}`;
    const id = await enqueue(pipeline.stores.outbox, { entity, key, version: 5, data: { total: 12 } });
    await pipeline.waitForStatus([id], ['completed']);
    assert.deepEqual((await readRecord(pipeline.stores.target, entity, key))!.data, { total: 12 });
    const workflowId = `${pipeline.config.workflowIdPrefix}${id}`;
    assert.deepEqual(await client.workflow.getHandle(workflowId).result(), { status: 'completed' }, 'the client decrypts the result');

    // The history as the server keeps it, fetched raw (no codec on this path).
    const { history } = await getStack().connection.workflowService.getWorkflowExecutionHistory({
      namespace: getStack().namespace,
      execution: { workflowId },
    });
    const raw = Buffer.from(temporal.api.history.v1.History.encode(history!).finish());
    assert.ok(raw.length > 0);
    assert.ok(!raw.includes(entity), 'no entity in the raw history');
    assert.ok(!raw.includes(key), 'no key in the raw history');
    assert.ok(raw.includes(workflowId), 'the history is the right one');
    const payloads = payloadsIn(history);
    // The workflow's input and result, and the steps' results (in local-activity markers).
    assert.ok(payloads.length >= 4, `found ${payloads.length} payloads`);
    for (const payload of payloads) {
      assert.equal(text(payload.metadata?.encoding), ENCRYPTED_ENCODING);
      assert.equal(text(payload.metadata?.[KEY_ID_METADATA]), 'k1');
    }

    // The codec server knows the new key first and the old one still: what k1 sealed opens.
    const server = startCodecServer(pipeline, children, {
      OUTBOX_SYNC_CODEC_KEYS: keysSetting(K2, K1),
      OUTBOX_SYNC_CODEC_TOKENS: `ops=${OPERATOR}`,
      INGEST_TOKENS: `press=${DEVICE}`,
      OUTBOX_SYNC_CODEC_PORT: '0',
    });
    const endpoint = `http://127.0.0.1:${await server.port}/codec`;
    const body = JSON.stringify({ payloads: payloads.map(toUiJson) });
    const headers = { 'content-type': 'application/json', 'x-namespace': getStack().namespace };
    const decoded = await fetch(`${endpoint}/decode`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${OPERATOR}` }, body });
    assert.equal(decoded.status, 200);
    const values = ((await decoded.json()) as { payloads: { metadata: Record<string, string>; data: string }[] }).payloads.map((p) => {
      assert.equal(Buffer.from(p.metadata.encoding!, 'base64').toString(), 'json/plain');
      return JSON.parse(Buffer.from(p.data, 'base64').toString());
    });
    assert.ok(
      values.some((v) => v.entity === entity && v.key === key && v.version === '5'),
      `the staging step's result in the clear: ${JSON.stringify(values)}`,
    );
    assert.ok(values.some((v) => v.messageId === id && v.execution === 1 && v.retry));

    // The Temporal CLI, a client we did not write, decodes through the same endpoint.
    const shown = await run(findTemporalBinary()!, [
      'workflow', 'show', '--workflow-id', workflowId, '--address', getStack().temporalAddress, '--namespace', getStack().namespace,
      '--codec-endpoint', endpoint, '--codec-auth', `Bearer ${OPERATOR}`, '--output', 'json',
    ]);
    assert.equal(shown.code, 0, shown.stderr);
    // Its JSON keeps payloads in protobuf's JSON form; decoded, they are plain JSON again.
    const shownPayloads = payloadsIn(JSON.parse(shown.stdout), (b64) => Buffer.from(b64 as string, 'base64'));
    assert.equal(shownPayloads.length, payloads.length);
    assert.ok(shownPayloads.every((p) => text(p.metadata?.encoding) === 'json/plain'));
    assert.ok(shownPayloads.some((p) => text(p.data).includes(entity) && text(p.data).includes(key)), 'temporal workflow show prints the decrypted input');

    // Encoding through the endpoint seals under the current key, k2.
    const plainBody = JSON.stringify({ payloads: [toUiJson(defaultPayloadConverter.toPayload({ hello: 'world' }))] });
    const encoded = (await (await fetch(`${endpoint}/encode`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${OPERATOR}` }, body: plainBody })).json()) as any;
    assert.equal(Buffer.from(encoded.payloads[0].metadata[KEY_ID_METADATA], 'base64').toString(), 'k2');

    // Nobody else sees the payloads.
    const anonymous = await fetch(`${endpoint}/decode`, { method: 'POST', headers, body });
    assert.equal(anonymous.status, 401);
    const device = await fetch(`${endpoint}/decode`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${DEVICE}` }, body });
    assert.equal(device.status, 403);
    assert.doesNotMatch(await device.text(), new RegExp(entity));
    const malformed = await fetch(`${endpoint}/decode`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${OPERATOR}` }, body: '{"payloads": [{"data": 7}]}' });
    assert.equal(malformed.status, 400);
    assert.deepEqual(await malformed.json(), { error: 'payloads[0].data: must be a base64 string', field: 'payloads[0].data' });

    // The browser's preflight from the Temporal UI's origin is answered; from another origin it is not.
    const uiOrigin = new URL(pipeline.config.temporalUiUrl).origin;
    const preflight = (origin: string) =>
      fetch(`${endpoint}/decode`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace,authorization' },
      });
    const allowed = await preflight(uiOrigin);
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get('access-control-allow-origin'), uiOrigin);
    assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /X-Namespace/i);
    assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /Authorization/i);
    assert.equal((await preflight('http://evil.example')).headers.get('access-control-allow-origin'), null);

    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0, server.output());
  });

  it('answers without a token only on a loopback address, and refuses to listen beyond it without tokens', async () => {
    const local = startCodecServer(pipeline, children, { OUTBOX_SYNC_CODEC_KEYS: keysSetting(K1), OUTBOX_SYNC_CODEC_PORT: '0' });
    const endpoint = `http://127.0.0.1:${await local.port}/codec`;
    const [sealed] = await new AesGcmCodec([K1]).encode([defaultPayloadConverter.toPayload({ n: 1 })]);
    const answer = await fetch(`${endpoint}/decode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ payloads: [toUiJson(sealed!)] }) });
    assert.equal(answer.status, 200);
    const [payload] = ((await answer.json()) as { payloads: { data: string }[] }).payloads;
    assert.deepEqual(JSON.parse(Buffer.from(payload!.data, 'base64').toString()), { n: 1 });
    assert.match(local.output(), /answers anyone on this machine/);
    local.child.kill('SIGTERM');
    assert.equal(await local.exited, 0);

    const wide = startCodecServer(pipeline, children, { OUTBOX_SYNC_CODEC_KEYS: keysSetting(K1), OUTBOX_SYNC_CODEC_HOST: '0.0.0.0', OUTBOX_SYNC_CODEC_PORT: '0' });
    assert.equal(await wide.exited, 2);
    assert.equal(wide.output(), 'outbox-sync: OUTBOX_SYNC_CODEC_TOKENS: required when codec-server listens on 0.0.0.0, beyond this machine\n');
  });

  it('refuses to start a worker with a short key: exit 2, one line naming the setting', async () => {
    const child = spawn(BIN, ['worker'], {
      env: pipeline.processEnv({ OUTBOX_SYNC_CODEC_KEYS: `k1=${randomBytes(16).toString('base64')}` }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    assert.equal(await new Promise((resolve) => child.once('exit', resolve)), 2);
    assert.equal(stderr, 'outbox-sync: OUTBOX_SYNC_CODEC_KEYS: key "k1" must be 32 bytes (AES-256), got 16; make one with: openssl rand -base64 32\n');
  });
});

describe('failure encryption: what a database says about a value stays out of the history', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let client: Client;
  const children: ChildProcess[] = [];

  before(async () => {
    pipeline = await TestPipeline.create({
      env: { OUTBOX_SYNC_CODEC_KEYS: keysSetting(K1) },
      userTables: {
        mysql: 'CREATE TABLE coupons (id int PRIMARY KEY, code varchar(40) NOT NULL UNIQUE)',
        mapping: (urls) => ({ databases: { shop: urls.mysql }, entities: { coupon: { database: 'shop', table: 'coupons', key: 'id' } } }),
      },
    });
    client = await startEncryptedPipeline(pipeline);
  });

  after(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await pipeline?.close();
  });

  it("seals a refused row's reason, which quotes the value, and the codec server shows it to an operator", async () => {
    const code = `SECRET-${randomBytes(8).toString('hex')}`;
    const [first, clash] = await Promise.all(
      [1, 2].map((id) => enqueue(pipeline.stores.outbox, { entity: 'coupon', key: String(id), version: 1, data: { code } }).then((n) => pipeline.waitForStatus([n], ['completed', 'dead']))),
    );
    const refused = [first![0]!, clash![0]!].find((m) => m.status === 'dead');
    assert.ok(refused, 'one of the two coupons clashes on the unique code');
    assert.match(refused.lastError!, new RegExp(`Duplicate entry '${code}'`), "the outbox keeps the database's words for the operator");

    const workflowId = `${pipeline.config.workflowIdPrefix}${refused.id}`;
    // The outbox row turns dead inside the step; its failure reaches the history when the workflow task ends.
    await client.workflow.getHandle(workflowId).result();
    const { history } = await getStack().connection.workflowService.getWorkflowExecutionHistory({ namespace: getStack().namespace, execution: { workflowId } });
    const raw = Buffer.from(temporal.api.history.v1.History.encode(history!).finish());
    assert.ok(raw.includes(workflowId), 'the history is the right one');
    assert.ok(!raw.includes(code), 'the value is nowhere in the raw history');
    assert.ok(!raw.includes('Duplicate entry'), "nor are the database's words");
    const sealed = failuresIn(history).filter((f) => f.encodedAttributes);
    assert.ok(sealed.length > 0, 'the step failure is in the history, encoded');
    for (const failure of sealed) {
      assert.equal(failure.message, 'Encoded failure');
      assert.equal(text(failure.encodedAttributes!.metadata?.encoding), ENCRYPTED_ENCODING);
    }

    const server = startCodecServer(pipeline, children, { OUTBOX_SYNC_CODEC_KEYS: keysSetting(K1), OUTBOX_SYNC_CODEC_TOKENS: `ops=${OPERATOR}`, OUTBOX_SYNC_CODEC_PORT: '0' });
    const decoded = await fetch(`http://127.0.0.1:${await server.port}/codec/decode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${OPERATOR}` },
      body: JSON.stringify({ payloads: sealed.map((f) => toUiJson(f.encodedAttributes as Payload)) }),
    });
    assert.equal(decoded.status, 200);
    const attributes = ((await decoded.json()) as { payloads: { data: string }[] }).payloads.map((p) => JSON.parse(Buffer.from(p.data, 'base64').toString()) as { message: string });
    assert.ok(attributes.some((a) => a.message.includes(`Duplicate entry '${code}'`)), `the operator reads the reason: ${JSON.stringify(attributes)}`);
  });

  it('seals a failure raised inside the workflow sandbox too (the worker loaded the bundle with the failure converter)', async () => {
    // An input the workflow code cannot read: its workflow task fails, in the sandbox, again and again.
    const handle = await client.workflow.start('syncMessage', { taskQueue: pipeline.config.taskQueue, workflowId: `broken-input-${randomBytes(6).toString('hex')}`, args: [{ messageId: 1, retry: null }] });
    try {
      const failure = await waitFor('the workflow task to fail', async () => {
        const { history } = await getStack().connection.workflowService.getWorkflowExecutionHistory({ namespace: getStack().namespace, execution: { workflowId: handle.workflowId } });
        const failed = history?.events?.find((e) => e.workflowTaskFailedEventAttributes)?.workflowTaskFailedEventAttributes?.failure;
        return failed ? { failure: failed, raw: Buffer.from(temporal.api.history.v1.History.encode(history!).finish()) } : undefined;
      });
      assert.equal(failure.failure.message, 'Encoded failure');
      assert.ok(!failure.raw.includes('Cannot read properties'), 'the TypeError is sealed');
      const opened = await new AesGcmCodec([K1]).decode([failure.failure.encodedAttributes as Payload]);
      assert.match((defaultPayloadConverter.fromPayload(opened[0]!) as { message: string }).message, /Cannot read properties of null/);
    } finally {
      await handle.terminate();
    }
  });
});

/** Worker and dispatcher with the pipeline's codec, as the `worker` and `dispatcher` processes build them (the worker loads the workflow bundle that matches its failure converter). */
async function startEncryptedPipeline(pipeline: TestPipeline): Promise<Client> {
  const stack = getStack();
  const dataConverter = dataConverterFor(pipeline.config);
  assert.ok(dataConverter);
  const worker = await createSyncWorker({
    connection: stack.nativeConnection,
    namespace: stack.namespace,
    taskQueue: pipeline.config.taskQueue,
    stores: pipeline.stores,
    settings: activitySettings(pipeline.config),
    dataConverter,
    options: { shutdownGraceTime: '2 seconds' },
  });
  pipeline.workers.push({ worker, run: worker.run() });
  const client = new Client({ connection: stack.connection, namespace: stack.namespace, dataConverter });
  assert.equal(dispatcherSettings(pipeline.config).entityKeySearchAttributes, false);
  pipeline.createDispatcher({}, client).start();
  return client;
}

function startCodecServer(pipeline: TestPipeline, children: ChildProcess[], env: Record<string, string>): { port: Promise<number>; exited: Promise<number | null>; output: () => string; child: ChildProcess } {
  const child = spawn(BIN, ['codec-server'], { env: pipeline.processEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = waitFor('the codec server to listen', async () => {
    if (child.exitCode !== null) throw new Error(`codec-server exited: ${output}`);
    const listening = output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg?: string; endpoint?: string })
      .find((entry) => entry.msg === 'codec server listening');
    return listening ? Number(new URL(listening.endpoint!).port) : undefined;
  });
  port.catch(() => undefined); // awaited by the tests that expect it to listen
  return { port, exited, output: () => output, child };
}

function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every payload an event carries (inputs, results), leaving out search attributes, which are never encoded. */
function payloadsIn(history: unknown, bytes: (value: unknown) => Uint8Array = (value) => value as Uint8Array): Payload[] {
  const found: Payload[] = [];
  const walk = (value: unknown, name: string): void => {
    if (!value || typeof value !== 'object' || ArrayBuffer.isView(value) || name === 'searchAttributes') return;
    // A marker's own details (which local activity ran when, which patch) are the SDK's bookkeeping, kept
    // as plain JSON by design; the step's result in a local-activity marker is ours and goes through the codec.
    if ('markerName' in value) return walk((value as { details?: { result?: unknown } }).details?.result, 'result');
    if (name === 'payloads' && Array.isArray(value)) {
      for (const payload of value as { metadata?: Record<string, unknown>; data?: unknown }[]) {
        const metadata = Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([k, v]) => [k, bytes(v)]));
        found.push({ metadata, data: bytes(payload.data ?? new Uint8Array()) });
      }
      return;
    }
    for (const [child, item] of Object.entries(value)) walk(item, child);
  };
  walk(history, '');
  return found;
}

/** Every failure in a history, causes included. */
function failuresIn(history: unknown): temporal.api.failure.v1.IFailure[] {
  const found: temporal.api.failure.v1.IFailure[] = [];
  const walk = (value: unknown, name: string): void => {
    if (!value || typeof value !== 'object' || ArrayBuffer.isView(value)) return;
    if (name === 'failure' || name === 'cause') found.push(value as temporal.api.failure.v1.IFailure);
    for (const [child, item] of Object.entries(value)) walk(item, child);
  };
  walk(history, '');
  return found;
}

/** A payload as the Temporal UI posts it: protobuf JSON, every bytes field in base64. */
function toUiJson(payload: Payload): { metadata: Record<string, string>; data: string } {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload.metadata ?? {})) metadata[name] = Buffer.from(value).toString('base64');
  return { metadata, data: Buffer.from(payload.data ?? []).toString('base64') };
}
