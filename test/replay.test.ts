/**
 * Determinism guard: recorded histories of `syncMessage` must replay against the current workflow code.
 * test/histories/ holds histories recorded from earlier code (a change that breaks them would break
 * executions running during an upgrade); this file also replays the histories of fresh executions.
 * To record the fresh ones as new fixtures: RECORD_HISTORIES=1 npm test.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { temporal } from '@temporalio/proto';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DefaultLogger, Worker } from '@temporalio/worker';

const quiet = new DefaultLogger('ERROR');
import { packageRoot } from '../config/package-root';
import { workflowIdFor } from '../temporal/workflow-id';
import { enqueue } from '../stores/outbox/enqueue';
import { TestPipeline, waitFor } from './support/pipeline';
import { getStack } from './support/stack';

const HISTORIES = join(packageRoot, 'test', 'histories');

describe('workflow replay (determinism guard)', () => {
  it('replays every recorded history in test/histories', async () => {
    const files = readdirSync(HISTORIES).filter((f) => f.endsWith('.json'));
    assert.ok(files.length >= 3, 'the recorded histories are present');
    for (const file of files) {
      const history = historyFromJSON(JSON.parse(readFileSync(join(HISTORIES, file), 'utf8')));
      await Worker.runReplayHistory({ workflowBundle: getStack().workflowBundle }, history, file);
    }
  });

  describe('histories of fresh executions', () => {
    let pipeline: TestPipeline;
    const recorded: { name: string; history: temporal.api.history.v1.IHistory }[] = [];

    before(async () => {
      pipeline = await TestPipeline.create({ proxyTarget: true, env: { OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '2', OUTBOX_SYNC_REDRIVE_BASE_MS: '1000' } });
      await pipeline.startWorker();
      pipeline.startDispatcher();
      const { outbox } = pipeline.stores;
      const completed = await enqueue(outbox, { entity: 'order', key: 'ok', data: { a: 1 } });
      const deleted = await enqueue(outbox, { entity: 'order', key: 'ok', op: 'delete' });
      const { rows } = await outbox.query(`INSERT INTO outbox_messages (entity, entity_key, data) VALUES ('order', 'bad', '"text"') RETURNING id`);
      const invalid = Number(rows[0].id);
      await pipeline.waitForStatus([completed, deleted], ['completed']);
      await pipeline.waitForStatus([invalid], ['dead']);
      // A transient fault that outlasts the step's retries: the execution records a failure.
      pipeline.targetProxy!.refuse();
      const transient = await enqueue(outbox, { entity: 'order', key: 'later', data: { b: 2 } });
      await pipeline.waitForStatus([transient], ['failed']);
      await pipeline.targetProxy!.restore();
      await pipeline.waitForStatus([transient], ['completed']);
      for (const [name, id] of [
        ['completed-upsert', completed],
        ['completed-delete', deleted],
        ['failed-invalid-data', invalid],
        ['failed-then-completed', transient],
      ] as const) {
        const handle = pipeline.client.workflow.getHandle(workflowIdFor(id, pipeline.config.workflowIdPrefix));
        await waitFor(`${name} to close`, async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true));
        // Every run of the workflow id: a message executed twice has two histories.
        for await (const execution of pipeline.client.workflow.list({ query: `WorkflowId = "${handle.workflowId}"` })) {
          const history = await pipeline.client.workflow.getHandle(handle.workflowId, execution.runId).fetchHistory();
          recorded.push({ name: `${name}-${recorded.filter((r) => r.name.startsWith(name)).length + 1}`, history });
        }
      }
    });

    after(async () => {
      await pipeline.close();
    });

    it('replays the histories of completed, failed and re-executed messages without nondeterminism', async () => {
      assert.ok(recorded.length >= 5, `recorded ${recorded.length} histories`);
      for (const { name, history } of recorded) {
        await Worker.runReplayHistory({ workflowBundle: getStack().workflowBundle }, history, name);
      }
      if (process.env.RECORD_HISTORIES === '1') {
        mkdirSync(HISTORIES, { recursive: true });
        for (const { name, history } of recorded) writeFileSync(join(HISTORIES, `${name}.json`), historyToJSON(history as never));
      }
    });

    it('detects a workflow whose code no longer matches its history', async () => {
      // The same history against a bundle of a workflow that takes another path must fail to replay.
      const changed = await import('@temporalio/worker').then(({ bundleWorkflowCode }) =>
        bundleWorkflowCode({ workflowsPath: require.resolve('./support/changed-workflow'), logger: quiet }),
      );
      const { history } = recorded.find((r) => r.name.startsWith('completed-upsert'))!;
      await assert.rejects(Worker.runReplayHistory({ workflowBundle: changed }, history, 'changed'), /[Nn]ondetermin/);
    });
  });
});
