import type { Client } from '@temporalio/client';
import type { PipelineMetrics } from '../observability/metrics';
import type { ClaimedMessage } from '../stores/outbox/state-machine';
import { searchAttributesFor } from '../temporal/search-attributes';
import { workflowIdFor } from '../temporal/workflow-id';
import type { StepRetrySettings, syncMessage } from '../workflows/sync-message';
import type { DispatcherLogger } from './dispatcher';

export interface StartSettings {
  taskQueue: string;
  workflowIdPrefix: string;
  stepRetry: StepRetrySettings;
  /** Entity and key as search attributes (default); off when payloads are encrypted. */
  entityKeySearchAttributes?: boolean;
  /**
   * Ask the server to hand each new execution's first workflow task straight back to a worker in this
   * process (eager start), skipping the task queue. Only where the client shares a NativeConnection with a
   * worker on the same task queue, as in `dev`.
   */
  eagerStart?: boolean;
}

/** Starts (or finds running) the workflow of one claimed message; returns its first run's id. */
export async function startExecution(client: Client, message: Pick<ClaimedMessage, 'id' | 'entity' | 'key' | 'execution'>, settings: StartSettings): Promise<string> {
  const handle = await client.workflow.start<typeof syncMessage>('syncMessage', {
    taskQueue: settings.taskQueue,
    workflowId: workflowIdFor(message.id, settings.workflowIdPrefix),
    args: [{ messageId: message.id, execution: message.execution, retry: settings.stepRetry, localSteps: true }],
    // One live execution per message: a second start while one runs returns that one. Once it has
    // closed, a start (a redrive or a rescue) opens a new run under the same id.
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    typedSearchAttributes: searchAttributesFor(message, { entityKey: settings.entityKeySearchAttributes ?? true }),
    ...(settings.eagerStart ? { requestEagerStart: true } : {}),
  });
  return handle.firstExecutionRunId;
}

/**
 * Starts the workflows of claimed messages. Those whose start fails (Temporal unreachable) wait here and
 * are started again, with the same execution number, before anything new is claimed. Should this process
 * die first, the reconciler finds them once their lease ends.
 */
export class Starter {
  private unstarted: ClaimedMessage[] = [];

  constructor(
    private readonly client: Client,
    private readonly settings: StartSettings,
    private readonly logger: DispatcherLogger,
    private readonly metrics: PipelineMetrics | null,
  ) {}

  /** True while some claimed messages still wait for their start. */
  get waiting(): boolean {
    return this.unstarted.length > 0;
  }

  isWaiting(id: number): boolean {
    return this.unstarted.some((m) => m.id === id);
  }

  /** Tries the waiting starts again; true when none is left waiting. */
  async retryWaiting(): Promise<boolean> {
    const retry = this.unstarted;
    this.unstarted = [];
    await this.startAll(retry);
    return !this.waiting;
  }

  /** Starts a workflow per message; returns those started (the others wait for the next pass). */
  async startAll(messages: ClaimedMessage[]): Promise<ClaimedMessage[]> {
    const results = await Promise.allSettled(messages.map((m) => startExecution(this.client, m, this.settings)));
    const failed = messages.filter((_, i) => results[i]!.status === 'rejected');
    if (failed.length === 0) return messages;
    this.unstarted.push(...failed);
    this.metrics?.startFailures.inc(failed.length);
    const reason = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
    this.logger.error('workflow starts failed; they are tried again before anything new is claimed', {
      count: failed.length,
      error: (reason as Error)?.message ?? String(reason),
    });
    return messages.filter((_, i) => results[i]!.status === 'fulfilled');
  }
}
