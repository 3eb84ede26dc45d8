/** `outbox-sync inspect <id>`: a message, its attempts and last error, its workflow id and a Temporal UI link. */
import type { Command } from 'commander';
import { loadConfig } from '../../config/config';
import { publicMessage, readMessage } from '../../stores/outbox/messages';
import { placementOf } from '../../stores/target/mapping';
import { workflowUrl } from '../../temporal/ui-links';
import { UsageError, parseId, withStores } from '../command';

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('a message, its attempts and last error, its workflow id and a Temporal UI link')
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
        if (opts.json) return console.log(JSON.stringify({ ...publicMessage(message), target, temporalUi }));
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
          ['temporal ui', temporalUi ?? '-'],
          ['created', message.createdAt.toISOString()],
          ['updated', message.updatedAt.toISOString()],
        ];
        for (const [name, value] of rows) console.log(`${name.padEnd(12)} ${value}`);
      });
    });
}
