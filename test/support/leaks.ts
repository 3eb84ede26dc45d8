/**
 * The leak check after each test (run by test/hooks.ts): what the test left open that was not open before
 * it — a pool, a client, a server, a timer, a child process — counted per kind of Node resource, e.g.
 * "1 TCPSocketWrap, 1 Timeout". The run-wide stack (the shared Temporal connection, the dev server) is open
 * before every test and after it, so it cancels out.
 *
 * A suite with `before` hooks shares what they open among its tests (a pipeline whose pool grows as the
 * tests use it, a server), and its `after` hooks close it: its tests are judged together, after those
 * hooks, against what was open before the first of them.
 */
import type Mocha from 'mocha';
import { liveProcesses, settleStoppingProcesses, type ProcessHandle } from './processes';

/**
 * Kinds that come and go without anyone leaking them: the terminal the reporter writes to, and file
 * system requests in flight (mocha, source maps and the SDK read files on their own schedule).
 */
const NOISY = new Set(['TTYWrap', 'FSReqCallback', 'FSReqPromise']);

/**
 * Closing sockets and cleared timers leave the list a few turns of the event loop later, and a client
 * may finish closing on a timer of its own (ioredis gives a socket that does not close, e.g. after a
 * refused TLS handshake or a Redis restart, 2 s before destroying it): wait this long at most. The wait
 * ends as soon as nothing is left, so only a test that does leak pays for it.
 */
const SETTLE_MS = 3_000;
/** A child process asked to stop (SIGKILL, or SIGTERM and its own shutdown) gets this long to go. */
const STOPPING_MS = 10_000;

export interface Snapshot {
  counts: Map<string, number>;
  processes: Set<ProcessHandle>;
}

export function snapshot(): Snapshot {
  return { counts: countResources(), processes: new Set(liveProcesses()) };
}

function countResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) if (!NOISY.has(kind)) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

function excess(before: Map<string, number>): [string, number][] {
  return [...countResources()]
    .map(([kind, n]): [string, number] => [kind, n - (before.get(kind) ?? 0)])
    .filter(([, n]) => n > 0)
    .sort(([a], [b]) => a.localeCompare(b));
}

/**
 * What is open now and was not at `before`, after letting it settle; null when nothing is. Names the
 * child processes started since `before` that still run.
 */
export async function findLeaks(before: Snapshot, settleMs = SETTLE_MS): Promise<string | null> {
  await settleStoppingProcesses(STOPPING_MS);
  const deadline = Date.now() + settleMs;
  let left = excess(before.counts);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 5));
    left = excess(before.counts);
  }
  if (left.length === 0) return null;
  const running = liveProcesses().filter((handle) => !before.processes.has(handle));
  const named = running.length > 0 ? ` (still running: ${running.map((h) => `${h.name}, pid ${h.pid}`).join('; ')})` : '';
  return `${left.map(([kind, n]) => `${n} ${kind}`).join(', ')}${named}`;
}

interface HookLists {
  _beforeAll: Mocha.Hook[];
  _afterAll: Mocha.Hook[];
}

const hooksOf = (suite: Mocha.Suite) => suite as unknown as HookLists;

/** Whether the test runs inside a suite that shares `before` hooks' resources among its tests. */
export function inSharingSuite(test: Mocha.Runnable | undefined): boolean {
  for (let suite = test?.parent; suite && !suite.root; suite = suite.parent) if (hooksOf(suite)._beforeAll.length > 0) return true;
  return false;
}

/**
 * Adds the leak check around each outermost suite with `before` hooks: a snapshot before its first
 * `before` hook, the check after its last `after` hook (there, a leak fails that hook, named by the suite).
 */
export function checkSharingSuites(root: Mocha.Suite): void {
  const visit = (suite: Mocha.Suite) => {
    const hooks = hooksOf(suite);
    if (hooks._beforeAll.length === 0) {
      suite.suites.forEach(visit);
      return;
    }
    let before: Snapshot | undefined;
    suite.beforeAll('snapshot for the leak check', async () => {
      await new Promise((resolve) => setImmediate(resolve));
      before = snapshot();
    });
    hooks._beforeAll.unshift(hooks._beforeAll.pop()!);
    suite.afterAll('leak check', async () => {
      // As for a test: a suite with a failed test is reported for that, not again for what it left open.
      if (!before || hasFailed(suite)) return;
      const leaked = await findLeaks(before);
      if (leaked) throw new Error(`the suite's tests and hooks leaked ${leaked}`);
    });
  };
  root.suites.forEach(visit);
}

function hasFailed(suite: Mocha.Suite): boolean {
  return suite.tests.some((test) => test.state === 'failed') || suite.suites.some(hasFailed);
}
