/** `outbox-sync ui`: the outbox page for operators (servers/ui/run-ui.ts). */
import type { Command } from 'commander';
import { addProcess } from '../command';

export function registerUi(program: Command): void {
  addProcess(program, 'ui', 'the outbox page for operators: status, activity, failed and dead messages, retry (OUTBOX_SYNC_UI_TOKENS)', async (config) => (await import('../../servers/ui/run-ui')).runUi(config));
}
