/**
 * What the retention deletes cost the server. When a namespace's retention expires, the history service
 * deletes each closed run: its visibility row, its mutable state and its history. The bench cannot wait for
 * that (a namespace's retention is one hour at the least), so it asks for the same deletion through the
 * DeleteWorkflowExecution API, which ends in the same delete manager, for every run the pipeline closed, and
 * measures the server's CPU from the first request until visibility counts none of them and the server is
 * idle again. It runs after the floor, so that no deletion left in the server's queues is counted there.
 */
import { status } from '@grpc/grpc-js';
import { isGrpcServiceError, type Client, type Connection } from '@temporalio/client';
import { serverCpuSeconds } from './floor';

export interface Deletes {
  runs: number;
  seconds: number;
  /** The Temporal server's CPU milliseconds per deleted run (null where its processes are not measured). */
  temporalCpuMs: number | null;
}

/**
 * Requests sent at once: enough to keep the server busy, few enough for the dev server's persistence rate
 * limit (50 at once over 100,000 runs exceeded it: "System Persistence Max QPS Reached").
 */
const AT_ONCE = 20;
const DELETED_WITHIN_MS = 600_000;
/** A second in which the server used less than this share of a core: what is left of the deletes is done. */
const IDLE_SHARE = 0.05;
const IDLE_WITHIN_MS = 120_000;

/** Deletes every completed `syncMessage` run of the task queue, and measures what the server spent on it. */
export async function measureDeletes(options: { client: Client; connection: Connection; namespace: string; taskQueue: string; temporalPids: number[] }): Promise<Deletes> {
  const { client, connection, namespace } = options;
  const query = `TaskQueue = '${options.taskQueue}' AND WorkflowType = 'syncMessage' AND ExecutionStatus = 'Completed'`;
  const runs: { workflowId: string; runId: string }[] = [];
  for await (const run of client.workflow.list({ query })) runs.push({ workflowId: run.workflowId, runId: run.runId });

  const cpuBefore = serverCpuSeconds(options.temporalPids);
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs.length; i += AT_ONCE) {
    let batch = runs.slice(i, i + AT_ONCE);
    for (let pause = 250; batch.length > 0; pause *= 2) {
      // Every request of a batch settles before the next (or the connection's close): none is left retrying.
      const results = await Promise.allSettled(batch.map((workflowExecution) => connection.workflowService.deleteWorkflowExecution({ namespace, workflowExecution })));
      // A run the server no longer finds is deleted already; one it had no capacity for is asked again.
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && codeOf(r) !== status.NOT_FOUND && codeOf(r) !== status.RESOURCE_EXHAUSTED);
      if (failed) throw new Error(`retention deletes: deleting a run failed after ${i} of ${runs.length}: ${(failed.reason as Error).message}`);
      batch = batch.filter((_, n) => codeOf(results[n]!) === status.RESOURCE_EXHAUSTED);
      if (batch.length > 0 && pause > 30_000) throw new Error(`retention deletes: the server had no capacity for ${batch.length} deletions after ${i} of ${runs.length}, for over a minute`);
      if (batch.length > 0) await new Promise((r) => setTimeout(r, pause));
    }
  }
  // The API returns once the deletion is queued; the run is gone when its visibility row is.
  const deadline = Date.now() + DELETED_WITHIN_MS;
  for (;;) {
    const { count } = await client.workflow.count(query);
    if (count === 0) break;
    if (Date.now() > deadline) throw new Error(`retention deletes: ${count} of ${runs.length} runs still visible ${DELETED_WITHIN_MS / 1000} s after their deletion was asked`);
    await new Promise((r) => setTimeout(r, 500));
  }
  // Visibility goes first; the history and mutable state follow. Counted until the server is idle again.
  await serverIdle(options.temporalPids);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpuAfter = serverCpuSeconds(options.temporalPids);
  return {
    runs: runs.length,
    seconds: Math.round(seconds * 100) / 100,
    temporalCpuMs: cpuBefore === null || cpuAfter === null || runs.length === 0 ? null : Math.round(((cpuAfter - cpuBefore) / runs.length) * 1000 * 100) / 100,
  };
}

/** The gRPC status a request failed with; null when it succeeded or failed otherwise. */
function codeOf(result: PromiseSettledResult<unknown>): status | null {
  return result.status === 'rejected' && isGrpcServiceError(result.reason) ? result.reason.code : null;
}

/** Resolves once the server's processes spent less than IDLE_SHARE of a core in one second (at once where they are not measured). */
async function serverIdle(pids: number[]): Promise<void> {
  const deadline = Date.now() + IDLE_WITHIN_MS;
  let last = serverCpuSeconds(pids);
  while (last !== null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = serverCpuSeconds(pids);
    if (now === null || now - last < IDLE_SHARE) return;
    last = now;
  }
}
