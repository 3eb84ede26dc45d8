/** The runs of one workflow id, from Temporal's visibility store: what the outbox page lists per message. */
import type { Client } from '@temporalio/client';

export interface Execution {
  runId: string;
  /** RUNNING, COMPLETED, FAILED, TERMINATED, TIMED_OUT, … */
  status: string;
  startTime: Date;
  closeTime: Date | null;
}

/** Every run of `workflowId`, newest first (at most `limit`). */
export async function listExecutions(client: Client, workflowId: string, limit = 100): Promise<Execution[]> {
  // Workflow ids are a configured prefix and a number; a quote in one would change the query's meaning.
  if (!/^[^"'\\]+$/.test(workflowId)) throw new Error(`workflow id ${JSON.stringify(workflowId)} cannot be queried`);
  const runs: Execution[] = [];
  for await (const info of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    runs.push({ runId: info.runId, status: info.status.name, startTime: info.startTime, closeTime: info.closeTime ?? null });
    if (runs.length >= limit) break;
  }
  return runs.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
}
