/**
 * The leak check after each test (run by test/hooks.ts): what the test left open that was not open before
 * it — a pool, a client, a server, a timer, a child process — counted per kind of Node resource, e.g.
 * "1 TCPSocketWrap, 1 Timeout". The run-wide stack (the shared Temporal connection, the dev server) is open
 * before every test and after it, so it cancels out.
 */
import { liveProcesses, settleStoppingProcesses, type ProcessHandle } from './processes';

/**
 * Kinds that come and go without anyone leaking them: the terminal the reporter writes to, and file
 * system requests in flight (mocha, source maps and the SDK read files on their own schedule).
 */
const NOISY = new Set(['TTYWrap', 'FSReqCallback', 'FSReqPromise']);

/** Closing sockets and cleared timers leave the list a few turns of the event loop later: wait this long at most. */
const SETTLE_MS = 200;
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
export async function findLeaks(before: Snapshot): Promise<string | null> {
  await settleStoppingProcesses(STOPPING_MS);
  const deadline = Date.now() + SETTLE_MS;
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
