/**
 * The worker process: runs `syncMessage` workflows and their activities on the task queue. Many workers
 * may run at once. SIGINT/SIGTERM stop polling and let running activities finish within the grace time;
 * anything cut short is retried by Temporal on another worker.
 */
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivitySettings } from '../activities/activities';
import type { MessageState } from '../stores/outbox/state-machine';
import type { Config } from '../config/config';
import type { Stores } from '../stores/stores';
import type { PipelineMetrics } from '../observability/metrics';
import { activityTelemetry } from './telemetry';
import { freshWorkflowBundle } from './bundle';

/** Steps (activities, local or not) one worker runs at once: the SDK's default, made explicit for the bench's baseline. */
export const WORKER_SLOTS = 100;

export interface SyncWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  stores: Pick<Stores, 'outbox' | 'targets' | 'cache'>;
  settings: ActivitySettings;
  /**
   * A bundle (tests build one per run), made with the same failure converter as `dataConverter`'s;
   * otherwise the matching one built with the code (worker/bundle.ts), or one made at start.
   */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Counts and times activities and outcomes when given (the processes give it; tests may not). */
  metrics?: PipelineMetrics;
  /** Encrypts payloads (temporal/data-converter.ts); the SDK's default when undefined. */
  dataConverter?: DataConverter;
  options?: Partial<WorkerOptions>;
}

/** The bundle built with the code (worker/bundle.ts) for `dataConverter`, when it matches the compiled workflows; null otherwise. */
export function prebuiltWorkflowBundle(dataConverter?: DataConverter): string | null {
  // The sandbox must convert failures as the rest of the worker does: the bundle is chosen to match.
  return freshWorkflowBundle(dataConverter?.failureConverterPath ? 'encoded-failures' : 'plain');
}

export function createSyncWorker({ connection, namespace, taskQueue, stores, settings, workflowBundle, metrics, dataConverter, options }: SyncWorkerOptions): Promise<Worker> {
  const prebuilt = workflowBundle ? null : prebuiltWorkflowBundle(dataConverter);
  workflowBundle ??= prebuilt ? { codePath: prebuilt } : undefined;
  const onOutcome = metrics
    ? (message: MessageState) => {
        const labels = { status: message.status, target: stores.targets.placeOf(message.entity).database };
        metrics.outcomes.inc(labels);
        metrics.endToEnd.observe(labels, (Date.now() - message.createdAt.getTime()) / 1000);
      }
    : undefined;
  return Worker.create({
    connection,
    namespace,
    taskQueue,
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: require.resolve('../workflows/sync-message') }),
    activities: createActivities({ outbox: stores.outbox, targets: stores.targets, cache: stores.cache, settings, onOutcome }),
    interceptors: { activity: [activityTelemetry(metrics ?? null)] },
    ...(dataConverter ? { dataConverter } : {}),
    maxConcurrentActivityTaskExecutions: WORKER_SLOTS,
    maxConcurrentLocalActivityExecutions: WORKER_SLOTS,
    shutdownGraceTime: '10 seconds',
    ...options,
  });
}

export function activitySettings(config: Config): ActivitySettings {
  return {
    maxExecutions: config.maxExecutions,
    redriveBaseMs: config.redriveBaseMs,
    redriveMaxMs: config.redriveMaxMs,
    maxDataBytes: config.maxDataBytes,
  };
}
