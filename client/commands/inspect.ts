/**
 * `outbox-sync inspect <id>`: a message, its attempts and last error, its workflow id and a Temporal UI
 * link; for a processing message, what Temporal says of its workflow (a workflow task that keeps failing,
 * and why), or that Temporal could not be asked.
 */
import type { Command } from 'commander';
import { loadConfig, type Config } from '../../config/config';
import { publicMessage, readMessage } from '../../stores/outbox/messages';
import { placementOf } from '../../stores/target/mapping';
import { workflowUrl } from '../../temporal/ui-links';
import type { WorkflowProgress } from '../../temporal/workflow-task';
import { UsageError, parseId, withStores } from '../command';

/** What Temporal says of the workflow, as `inspect --json` prints it. */
type TemporalView =
  | { workflowStatus: string | null; failingWorkflowTask: { attempt: number; reason: string } | null }
  | { error: string };

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('a message, its attempts and last error, its workflow id and a Temporal UI link; for a processing message, whether its workflow makes progress')
    .argument('<id>', 'message id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const config = loadConfig();
      const messageId = parseId(id);
      await withStores(config, async ({ outbox }) => {
        const message = await readMessage(outbox, messageId);
        if (!message) throw new UsageError(`message ${messageId} does not exist`);
        const temporalUi = message.workflowId ? workflowUrl(config, message.workflowId) : null;
        const target = placementOf(config.targets, message.entity);
        // Only a processing message has a workflow that should be moving it; the others need no Temporal.
        const temporal = message.status === 'processing' && message.workflowId ? await askTemporal(config, message.workflowId) : null;
        if (opts.json) return console.log(JSON.stringify({ ...publicMessage(message), target, temporalUi, temporal }));
        const rows: [string, unknown][] = [
          ['id', message.id],
          ['status', message.status],
          ['entity', message.entity],
          ['key', message.key],
          ['op', message.op],
          ['version', message.version],
          ['source', message.source ?? '-'],
          ['target', `${target.database} table ${target.table}`],
          ['attempts', message.executions],
          ['last error', message.lastError ?? '-'],
          ['workflow id', message.workflowId ?? '- (not started yet)'],
          ...(temporal ? [['workflow', describeView(temporal)] as [string, unknown]] : []),
          ['temporal ui', temporalUi ?? '-'],
          ['created', message.createdAt.toISOString()],
          ['updated', message.updatedAt.toISOString()],
          ['overdue at', message.overdueAt?.toISOString() ?? '-'],
        ];
        for (const [name, value] of rows) console.log(`${name.padEnd(12)} ${value}`);
      });
    });
}

/** Asks Temporal about the workflow; when it cannot be reached, says so instead of failing the command. */
async function askTemporal(config: Config, workflowId: string): Promise<TemporalView> {
  // Loaded only here, so that inspecting a message that needs no Temporal starts fast.
  const [{ connectTemporal }, { workflowProgress }, { temporalUnreachable }, { plainReason }] = await Promise.all([
    import('../../temporal/connection'),
    import('../../temporal/workflow-task'),
    import('../../temporal/unreachable'),
    import('../../stores/unreachable'),
  ]);
  let connected: Awaited<ReturnType<typeof connectTemporal>>;
  try {
    connected = await connectTemporal(config, 3_000);
  } catch (err) {
    return { error: `Temporal could not be asked: ${(await temporalUnreachable(err, config.temporalAddress)).message}` };
  }
  try {
    return toView(await workflowProgress(connected.client, workflowId));
  } catch (err) {
    return { error: `Temporal could not be asked: TEMPORAL_ADDRESS (${config.temporalAddress}): ${plainReason(err)}` };
  } finally {
    await connected.connection.close().catch(() => undefined);
  }
}

function toView(progress: WorkflowProgress): TemporalView {
  return progress.found ? { workflowStatus: progress.status, failingWorkflowTask: progress.failingTask } : { workflowStatus: null, failingWorkflowTask: null };
}

function describeView(view: TemporalView): string {
  if ('error' in view) return view.error;
  if (view.workflowStatus === null) return 'not in Temporal (the reconciler starts it again once the lease ends)';
  const status = view.workflowStatus.toLowerCase();
  if (!view.failingWorkflowTask) return status;
  const { attempt, reason } = view.failingWorkflowTask;
  return `${status}, making no progress: its workflow task is on attempt ${attempt}; Temporal's reason: ${reason}`;
}
