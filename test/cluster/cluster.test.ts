/**
 * The production Temporal server (scripts/cluster.sh): frontend, history, matching and worker as separate
 * processes, persistence and visibility in PostgreSQL, mutual TLS on the frontend. Run by `npm run
 * test:cluster`, which builds and starts it and points the test stack at it (TEMPORAL_TEST_*). The
 * pipeline runs as users run it, worker and dispatcher processes over mTLS, while a service is killed or
 * restarted in the middle of a drain; each drain must end with every message completed once, one
 * execution per message and nothing running, and the target exact.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../../config/package-root';
import { enqueueBatch } from '../../stores/outbox/enqueue';
import { TestPipeline, waitFor } from '../support/pipeline';
import { runCli, spawnCli, type ProcessHandle } from '../support/processes';
import { getStack } from '../support/stack';

const run = promisify(execFile);
const CLUSTER = join(packageRoot, 'scripts', 'cluster.sh');

async function cluster(...args: string[]): Promise<void> {
  await run('bash', [CLUSTER, ...args], { cwd: packageRoot });
}

const KEYS = 150;
const VERSIONS = 3;

describe('on the production Temporal server (separate services, PostgreSQL, mTLS)', function () {
  this.timeout(600_000);

  before(function () {
    if (!process.env.TEMPORAL_TEST_TLS_CERT_FILE) throw new Error('these tests run against scripts/cluster.sh: use npm run test:cluster');
  });

  describe('reaching it', () => {
    let pipeline: TestPipeline;
    before(async () => {
      pipeline = await TestPipeline.create();
    });
    after(async () => {
      await pipeline.close();
    });

    it('refuses a client without its certificate: migrate exits 1 with one plain line naming the TLS settings', async () => {
      const env = pipeline.processEnv({ TEMPORAL_TLS_CERT_FILE: '', TEMPORAL_TLS_KEY_FILE: '' });
      const refused = await runCli(['migrate'], env);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /^outbox-sync: TEMPORAL_ADDRESS \(127\.0\.0\.1:\d+\): .*TEMPORAL_TLS_\* settings\)\n$/);
    });

    it('migrate --create-namespace makes a namespace on the cluster and registers the search attributes through the operator service', async () => {
      const namespace = `${pipeline.name}-ns`;
      const made = await runCli(['migrate', '--create-namespace', '--namespace-retention', '1d'], pipeline.processEnv({ TEMPORAL_NAMESPACE: namespace }));
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, new RegExp(`^temporal: created namespace ${namespace} \\(retention 1 d\\)$`, 'm'));
      assert.match(made.stdout, new RegExp(`^temporal: registered OutboxMessageId, OutboxEntity, OutboxKey in ${namespace}$`, 'm'));
      const { customAttributes } = await getStack().connection.operatorService.listSearchAttributes({ namespace });
      assert.deepEqual(Object.keys(customAttributes ?? {}).filter((name) => name.startsWith('Outbox')).sort(), ['OutboxEntity', 'OutboxKey', 'OutboxMessageId']);
      const again = await runCli(['migrate', '--create-namespace'], pipeline.processEnv({ TEMPORAL_NAMESPACE: namespace }));
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, new RegExp(`^temporal: search attributes present in ${namespace}$`, 'm'));
      assert.doesNotMatch(again.stdout, /created namespace/);
    });
  });

  const disruptions: { name: string; disrupt: () => Promise<void> }[] = [
    {
      name: 'the history service is SIGKILLed, then started again',
      disrupt: async () => {
        await cluster('kill', 'history');
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        await cluster('start', '--service', 'history');
      },
    },
    { name: 'the frontend is restarted', disrupt: () => cluster('restart', 'frontend') },
    { name: 'the matching service is restarted', disrupt: () => cluster('restart', 'matching') },
  ];

  for (const { name, disrupt } of disruptions) {
    describe(`a drain over mTLS in which ${name}`, () => {
      let pipeline: TestPipeline;
      const processes: ProcessHandle[] = [];
      before(async () => {
        pipeline = await TestPipeline.create();
      });
      after(async () => {
        await Promise.all(processes.splice(0).map((p) => p.stop('SIGTERM', 20_000)));
        await pipeline.close();
      });

      it('ends with every message completed once, one execution per message found by its id, and the target exact', async () => {
        const worker = spawnCli(['worker'], pipeline.processEnv(), { keepOutput: 200_000 });
        const dispatcher = spawnCli(['dispatcher'], pipeline.processEnv(), { keepOutput: 200_000 });
        processes.push(worker, dispatcher);
        await Promise.all([worker.waitFor('worker running'), dispatcher.waitFor('dispatcher running')]);

        const messages = Array.from({ length: KEYS * VERSIONS }, (_, i) => {
          const key = `k${i % KEYS}`;
          const version = Math.floor(i / KEYS) + 1;
          return { entity: 'order', key, version, data: { key, version } };
        });
        const ids = await enqueueBatch(pipeline.stores.outbox, messages);
        await waitFor('a third of the messages to complete', async () => ((await completedCount(pipeline, ids)) >= ids.length / 3 ? true : undefined), 120_000);
        const atDisruption = await completedCount(pipeline, ids);
        const started = Date.now();
        await disrupt();
        const back = Date.now();
        await pipeline.waitForStatus(ids, ['completed'], 300_000);
        assert.ok(atDisruption < ids.length, 'the disruption came in the middle of the drain');
        console.log(
          `      ${atDisruption} of ${ids.length} completed when it began; the service answered again ${((back - started) / 1000).toFixed(1)} s later; ` +
            `all completed ${((Date.now() - started) / 1000).toFixed(1)} s after it began`,
        );

        // Completed once: one move to completed per message in its status history.
        const { rows: moves } = await pipeline.stores.outbox.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM outbox_message_history WHERE message_id = ANY($1::bigint[]) AND to_status = 'completed' GROUP BY message_id",
          [ids],
        );
        assert.equal(moves.length, ids.length);
        assert.ok(moves.every((m) => m.n === 1), 'no message completed twice');

        // One execution per message, closed as completed, in the visibility store on PostgreSQL.
        const runs = await waitFor(
          'visibility to list every execution as closed',
          async () => {
            const found = new Map<string, string[]>();
            for await (const info of getStack().client.workflow.list({ query: `TaskQueue = "${pipeline.config.taskQueue}"` })) {
              found.set(info.workflowId, [...(found.get(info.workflowId) ?? []), info.status.name]);
            }
            const closed = [...found.values()].every((statuses) => !statuses.includes('RUNNING'));
            return found.size === ids.length && closed ? found : undefined;
          },
          60_000,
        );
        for (const [workflowId, statuses] of runs) assert.deepEqual(statuses, ['COMPLETED'], workflowId);

        // Found by message id, as the Temporal UI searches (ids repeat across the test outboxes: hence the queue).
        for (const id of [ids[0]!, ids[Math.floor(ids.length / 2)]!, ids.at(-1)!]) {
          const byId = [];
          for await (const info of getStack().client.workflow.list({ query: `OutboxMessageId = "${id}" AND TaskQueue = "${pipeline.config.taskQueue}"` })) byId.push(info.workflowId);
          assert.deepEqual(byId, [`${pipeline.config.workflowIdPrefix}${id}`]);
        }

        // The target holds the newest version of every key, exactly.
        const { rows } = await pipeline.targetAdmin<{ entity_key: string; version: string; data: { key: string; version: number } }>(
          'SELECT entity_key, version, data FROM synced_records ORDER BY entity_key',
        );
        assert.equal(rows.length, KEYS);
        for (const row of rows) {
          assert.equal(Number(row.version), VERSIONS, row.entity_key);
          assert.deepEqual(row.data, { key: row.entity_key, version: VERSIONS });
        }
      });
    });
  }
});

async function completedCount(pipeline: TestPipeline, ids: number[]): Promise<number> {
  const { rows } = await pipeline.stores.outbox.query<{ n: number }>("SELECT count(*)::int AS n FROM outbox_messages WHERE id = ANY($1::bigint[]) AND status = 'completed'", [ids]);
  return rows[0]!.n;
}
