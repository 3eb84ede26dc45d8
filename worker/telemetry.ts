/**
 * What each activity execution adds to logs and metrics: the message id on every log line (the SDK adds
 * the workflow id, run id and attempt), and the duration and result of every attempt.
 */
import { Context } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { PipelineMetrics } from '../observability/metrics';

export function activityTelemetry(metrics: PipelineMetrics | null): ActivityInterceptorsFactory {
  return (ctx: Context) => {
    let messageId: unknown;
    return {
      inbound: {
        async execute(input, next) {
          messageId = (input.args[0] as { messageId?: unknown } | undefined)?.messageId;
          const stop = metrics?.activity.startTimer({ activity: ctx.info.activityType });
          try {
            const result = await next(input);
            stop?.({ result: 'ok' });
            return result;
          } catch (err) {
            stop?.({ result: 'error' });
            throw err;
          }
        },
      },
      outbound: {
        getLogAttributes: (attributes, next) => next(messageId === undefined ? attributes : { messageId, ...attributes }),
      },
    };
  };
}
