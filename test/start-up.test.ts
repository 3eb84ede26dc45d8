/**
 * Start in any order, against the real stack: a worker or dispatcher started while the outbox database,
 * Redis or Temporal does not answer (a proxy in front of it refuses connections) says so in one plain line
 * per try, naming the setting and the address, and starts working once the proxy lets connections through.
 * A signal ends the wait at once with exit 0; what waiting cannot mend ends the start with exit 1.
 */
import assert from 'node:assert/strict';
import { enqueue } from '../stores/outbox/enqueue';
import { FaultProxy } from './support/fault-proxy';
import { TestPipeline } from './support/pipeline';
import { spawnCli, type ProcessExit, type ProcessHandle } from './support/processes';
import { freePort, getStack } from './support/stack';

/** A dependency put behind a proxy: the setting that reaches it through the proxy, and what the lines call it. */
interface Cut {
  what: string;
  setting: string;
  proxy: FaultProxy;
  value: string;
}

type Dependency = 'outbox' | 'redis' | 'temporal';

const NAMES: Record<Dependency, { what: string; setting: string }> = {
  outbox: { what: 'the outbox database', setting: 'OUTBOX_DATABASE_URL' },
  redis: { what: 'Redis', setting: 'REDIS_URL' },
  temporal: { what: 'Temporal', setting: 'TEMPORAL_ADDRESS' },
};

/** Starts a proxy in front of the dependency, refusing from the start. */
async function cut(pipeline: TestPipeline, dependency: Dependency): Promise<Cut> {
  const real = dependency === 'temporal' ? new URL(`grpc://${getStack().temporalAddress}`) : new URL(pipeline.env[NAMES[dependency].setting]!);
  const proxy = await FaultProxy.start(real.hostname, Number(real.port));
  proxy.refuse();
  const through = new URL(real);
  through.hostname = '127.0.0.1';
  through.port = String(proxy.port);
  const value = dependency === 'temporal' ? `127.0.0.1:${proxy.port}` : through.toString();
  return { ...NAMES[dependency], proxy, value };
}

/** The address as the lines show it: host and port, and the database for a database. */
function shownAddress(value: string): string {
  if (!value.includes('://')) return value;
  const url = new URL(value);
  return `${url.hostname}:${url.port}${url.pathname === '/' ? '' : url.pathname}`;
}

function waitingLine(dependency: Cut, reason: string | RegExp): RegExp {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const why = typeof reason === 'string' ? escape(reason) : reason.source;
  return new RegExp(`waiting for ${escape(dependency.what)} at ${escape(shownAddress(dependency.value))} \\(${dependency.setting}\\): ${why}; trying again in [0-9.]+ s`, 'g');
}

/** Resolves once `pattern` (global) has matched the output `count` times. */
async function seen(process: ProcessHandle, pattern: RegExp, count: number, timeoutMs = 30_000): Promise<void> {
  await process.waitFor((output) => (output.match(pattern)?.length ?? 0) >= count, timeoutMs);
}

/** The process's exit, or 'still running' after `ms`. */
async function exitWithin(process: ProcessHandle, ms: number): Promise<ProcessExit | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), ms)));
  try {
    return await Promise.race([process.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** No raw driver or transport dump reached the operator. */
function assertPlain(output: string): void {
  for (const raw of ['tonic::', 'ConnectError', 'Failed to connect before the deadline', 'ECONNREFUSED', 'at async']) {
    assert.ok(!output.includes(raw), `"${raw}" in the output:\n${output}`);
  }
}

describe('start in any order: a worker or dispatcher waits for what it needs', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  const proxies: FaultProxy[] = [];

  beforeEach(async () => {
    pipeline = await TestPipeline.create();
  });

  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
    await pipeline.close();
  });

  async function cutOff(dependency: Dependency): Promise<Cut> {
    const dependencyCut = await cut(pipeline, dependency);
    proxies.push(dependencyCut.proxy);
    return dependencyCut;
  }

  /** Sends one message through and waits for it to be completed. */
  async function oneMessageThrough(): Promise<void> {
    const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: `k-${Date.now()}`, version: 1, data: { n: 1 } });
    const [message] = await pipeline.waitForStatus([id], ['completed'], 60_000);
    assert.equal(message!.status, 'completed');
  }

  const cases: { process: 'worker' | 'dispatcher'; dependency: Dependency; reason: string | RegExp }[] = [
    { process: 'worker', dependency: 'outbox', reason: 'the connection was refused' },
    { process: 'worker', dependency: 'redis', reason: 'the connection was refused' },
    { process: 'worker', dependency: 'temporal', reason: 'the connection was refused' },
    { process: 'dispatcher', dependency: 'outbox', reason: 'the connection was refused' },
    { process: 'dispatcher', dependency: 'temporal', reason: 'the connection was refused' },
  ];
  for (const { process: command, dependency, reason } of cases) {
    it(`${command}: waits for ${NAMES[dependency].what} (${NAMES[dependency].setting}) with one plain line per try, then works once it answers`, async () => {
      const down = await cutOff(dependency);
      // The other half of the pipeline runs in this process.
      if (command === 'worker') pipeline.startDispatcher();
      else await pipeline.startWorker();
      const child = spawnCli([command], pipeline.processEnv({ [down.setting]: down.value }));
      try {
        const line = waitingLine(down, reason);
        await seen(child, line, 3);
        assert.ok(!child.output().includes(`${command} running`), 'it does not start without what it needs');
        // The waits grow: the third try comes later than the second.
        assert.match(child.output(), /trying again in 0\.5 s[\s\S]*trying again in 1 s[\s\S]*trying again in 2 s/);
        await down.proxy.restore();
        await child.waitFor(`${command} running`, 30_000);
        assert.ok(child.output().includes(`${down.what} at ${shownAddress(down.value)} (${down.setting}) answers`), child.output());
        await oneMessageThrough();
        assertPlain(child.output());
      } finally {
        assert.deepEqual(await child.stop('SIGTERM', 20_000), { code: 0, signal: null }, child.output());
      }
    });
  }

  for (const command of ['worker', 'dispatcher'] as const) {
    it(`${command}: SIGTERM while it waits for Temporal ends it at once, exit 0`, async () => {
      const down = await cutOff('temporal');
      const child = spawnCli([command], pipeline.processEnv({ [down.setting]: down.value }));
      await seen(child, waitingLine(down, 'the connection was refused'), 1);
      const started = Date.now();
      // A process left alive would be SIGKILLed after 5 s, and the exit would say so.
      assert.deepEqual(await child.stop('SIGTERM', 5_000), { code: 0, signal: null }, child.output());
      assert.ok(Date.now() - started < 4_000, `it took ${Date.now() - started} ms to stop`);
      assertPlain(child.output());
    });
  }

  it('worker: /metrics answers while it waits, saying what for (outbox_sync_waiting_for), and 0 once it runs', async () => {
    const down = await cutOff('temporal');
    const metrics = `127.0.0.1:${await freePort()}`;
    const child = spawnCli(['worker'], pipeline.processEnv({ [down.setting]: down.value, OUTBOX_SYNC_METRICS_ADDRESS: metrics }));
    const waitingFor = async (dependency: string) => {
      const text = await (await fetch(`http://${metrics}/metrics`)).text();
      return new RegExp(`^outbox_sync_waiting_for\\{dependency="${dependency}"\\} (\\d)$`, 'm').exec(text)?.[1];
    };
    try {
      await seen(child, waitingLine(down, 'the connection was refused'), 1);
      assert.equal(await waitingFor('TEMPORAL_ADDRESS'), '1');
      assert.equal(await waitingFor('OUTBOX_DATABASE_URL'), '0', 'the outbox database answered');
      await down.proxy.restore();
      await child.waitFor('worker running', 30_000);
      assert.equal(await waitingFor('TEMPORAL_ADDRESS'), '0');
    } finally {
      assert.deepEqual(await child.stop('SIGTERM', 20_000), { code: 0, signal: null }, child.output());
    }
  });

  it('worker: waits for a namespace that does not exist yet, naming TEMPORAL_NAMESPACE', async () => {
    const namespace = `missing-${pipeline.name}`;
    const child = spawnCli(['worker'], pipeline.processEnv({ TEMPORAL_NAMESPACE: namespace }));
    try {
      // The log lines are JSON: the quotes around the name are escaped there.
      const address = pipeline.env.TEMPORAL_ADDRESS!.replace(/\./g, '\\.');
      await seen(child, new RegExp(`waiting for Temporal at ${address} \\(TEMPORAL_ADDRESS\\): namespace \\\\"${namespace}\\\\" \\(TEMPORAL_NAMESPACE\\) does not exist yet`, 'g'), 2);
    } finally {
      assert.deepEqual(await child.stop('SIGTERM', 5_000), { code: 0, signal: null });
    }
  });

  for (const command of ['worker', 'dispatcher'] as const) {
    it(`${command}: a start that waiting cannot mend (a database role that does not exist) exits 1 with one line, and no process is left`, async () => {
      const url = new URL(pipeline.env.OUTBOX_DATABASE_URL!);
      url.username = 'no_such_role';
      const child = spawnCli([command], pipeline.processEnv({ OUTBOX_DATABASE_URL: url.toString() }));
      assert.deepEqual(await exitWithin(child, 20_000), { code: 1, signal: null }, child.output());
      assert.equal(child.stderr(), `outbox-sync: OUTBOX_DATABASE_URL (${shownAddress(url.toString())}): role "no_such_role" does not exist\n`);
    });
  }

  it('after the start: Temporal going away and coming back holds the pipeline up for that time only', async () => {
    const down = await cutOff('temporal');
    await down.proxy.restore();
    const env = pipeline.processEnv({ [down.setting]: down.value });
    const worker = spawnCli(['worker'], env);
    const dispatcher = spawnCli(['dispatcher'], env);
    try {
      await Promise.all([worker.waitFor('worker running'), dispatcher.waitFor('dispatcher running')]);
      await oneMessageThrough();
      down.proxy.refuse();
      const id = await enqueue(pipeline.stores.outbox, { entity: 'order', key: 'while-down', version: 1, data: { n: 2 } });
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const [meanwhile] = await pipeline.waitForStatus([id], ['pending', 'processing', 'failed']);
      assert.notEqual(meanwhile!.status, 'completed');
      await down.proxy.restore();
      await pipeline.waitForStatus([id], ['completed'], 60_000);
    } finally {
      assert.deepEqual(await worker.stop('SIGTERM', 20_000), { code: 0, signal: null }, worker.output());
      assert.deepEqual(await dispatcher.stop('SIGTERM', 20_000), { code: 0, signal: null }, dispatcher.output());
    }
  });

  describe('ingest and the outbox page listen at once and answer 503 while the outbox database is down', () => {
    const TOKEN = 'start-up-test-token-0123456789';
    const unavailable = { error: 'the outbox database does not answer (the connection was refused); try again later' };

    async function listening(command: 'ingest' | 'ui'): Promise<{ child: ProcessHandle; base: string; down: Cut }> {
      const down = await cutOff('outbox');
      const port = await freePort();
      const env: Record<string, string> =
        command === 'ingest'
          ? { INGEST_PORT: String(port), INGEST_TOKENS: `press=${TOKEN}` }
          : { OUTBOX_SYNC_UI_PORT: String(port), OUTBOX_SYNC_UI_TOKENS: `alice=${TOKEN}` };
      const child = spawnCli([command], pipeline.processEnv({ [down.setting]: down.value, ...env }));
      await child.waitFor(command === 'ingest' ? 'ingest listening' : 'outbox page listening');
      return { child, base: `http://127.0.0.1:${port}`, down };
    }

    it('ingest: POST /v1/messages and /healthz are 503 naming the outbox database, then 202 once it is back', async () => {
      const { child, base, down } = await listening('ingest');
      try {
        const post = () =>
          fetch(`${base}/v1/messages`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify({ entity: 'order', key: 'k1', version: 1, data: { n: 1 } }),
          });
        const refused = await post();
        assert.equal(refused.status, 503);
        assert.equal(refused.headers.get('retry-after'), '5');
        assert.deepEqual(await refused.json(), unavailable);
        assert.equal((await fetch(`${base}/healthz`)).status, 503);
        await down.proxy.restore();
        const accepted = await post();
        assert.equal(accepted.status, 202);
        const { id } = (await accepted.json()) as { id: number };
        const { rows } = await pipeline.stores.outbox.query('SELECT entity_key FROM outbox_messages WHERE id = $1', [id]);
        assert.deepEqual(rows, [{ entity_key: 'k1' }]);
        assert.match(child.output(), /the outbox database does not answer \(the connection was refused\)/);
      } finally {
        assert.deepEqual(await child.stop('SIGTERM', 10_000), { code: 0, signal: null }, child.output());
      }
    });

    it('ui: the API is 503 naming the outbox database, then answers once it is back', async () => {
      const { child, base, down } = await listening('ui');
      try {
        const status = () => fetch(`${base}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
        const refused = await status();
        assert.equal(refused.status, 503);
        assert.deepEqual(await refused.json(), unavailable);
        await down.proxy.restore();
        const answered = await status();
        assert.equal(answered.status, 200, await answered.clone().text());
        assert.ok('counts' in ((await answered.json()) as object));
      } finally {
        assert.deepEqual(await child.stop('SIGTERM', 10_000), { code: 0, signal: null }, child.output());
      }
    });
  });
});
