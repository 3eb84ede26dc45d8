/** The Temporal SDK's process-wide runtime: its logs routed into ours, and its own metrics exporter. */
import { DefaultLogger, Runtime, type LogEntry, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../observability/logging';

const SDK_LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * Routes the Temporal SDK's logs into `logger`, once per process and before any connection: the
 * activities' and workflows' own lines (with workflowId, runId, attempt from the SDK, messageId from
 * worker/telemetry.ts) at the configured level, the SDK's internals at warning and above. With
 * `sdkMetricsAddress` the SDK serves its own Prometheus metrics there (the worker adds them to /metrics).
 */
export function installRuntime(logger: Logger, sdkMetricsAddress?: string): void {
  const chattyBelowWarn = (entry: LogEntry) =>
    (entry.level === 'INFO' || entry.level === 'DEBUG' || entry.level === 'TRACE') &&
    entry.meta?.sdkComponent !== 'activity' &&
    entry.meta?.sdkComponent !== 'workflow';
  const forward = (entry: LogEntry) => {
    if (chattyBelowWarn(entry) && !logger.isLevelEnabled('debug')) return;
    // One name for the run id in every line (activities call it workflowRunId); task tokens are noise.
    const meta: Record<string, unknown> = { ...entry.meta };
    if (meta.workflowRunId !== undefined) meta.runId = meta.workflowRunId;
    delete meta.workflowRunId;
    delete meta.taskToken;
    logger[SDK_LEVELS[entry.level]](meta, entry.message);
  };
  Runtime.install({
    logger: new DefaultLogger(logger.isLevelEnabled('debug') ? 'DEBUG' : 'INFO', forward),
    telemetryOptions: {
      logging: { forward: {}, filter: { core: 'WARN', other: 'ERROR' } },
      ...(sdkMetricsAddress ? { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } } : {}),
    },
  });
}
