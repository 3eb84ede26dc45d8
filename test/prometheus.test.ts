/**
 * The Prometheus rules and the Grafana dashboard shipped in observability/: the rules' unit tests under
 * promtool, then a real Prometheus (1 s scrapes and evaluations) over a real worker, dispatcher and ingest
 * while one message goes dead and another completes. The dead-message alert must fire through the HTTP
 * API, and every metric the rules and the dashboard read must be in what Prometheus scraped.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { packageRoot } from '../config/package-root';
import { enqueue } from '../stores/outbox/enqueue';
import { TestPipeline, waitFor } from './support/pipeline';
import { ProcessGroup, spawnProcess } from './support/processes';
import { freePort } from './support/stack';
import { INSTALL_HINT, PrometheusServer } from './support/prometheus-server';
import { metricNames } from './support/promql';

const RULES_DIR = join(packageRoot, 'observability', 'prometheus');
const RULES = join(RULES_DIR, 'outbox-sync.rules.yml');
const RULE_TESTS = join(RULES_DIR, 'outbox-sync.rules.test.yml');
const DASHBOARD = join(packageRoot, 'observability', 'grafana', 'outbox-sync.dashboard.json');

interface RuleFile {
  groups: { name: string; rules: { record?: string; alert?: string; expr: string }[] }[];
}

interface RuleTestFile {
  tests: {
    name: string;
    promql_expr_test?: { expr: string }[];
    alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[];
  }[];
}

const rules = () => (parseYaml(readFileSync(RULES, 'utf8')) as RuleFile).groups.flatMap((group) => group.rules);

/** Runs promtool (Debian's prometheus package; .ci/run installs it) to its end. */
async function promtool(...args: string[]): Promise<{ code: number | null; output: string }> {
  const run = spawnProcess({ command: 'promtool', args, cwd: RULES_DIR, name: `promtool ${args.join(' ')}` });
  const { code } = await run.exited.catch((err: Error) => {
    throw new Error(`${err.message} (${INSTALL_HINT})`);
  });
  return { code, output: run.output() };
}

describe('Prometheus rules and the Grafana dashboard', () => {
  describe('the rules under promtool', () => {
    it('promtool check rules accepts the rules file', async () => {
      const { code, output } = await promtool('check', 'rules', RULES);
      assert.equal(code, 0, output);
      assert.match(output, new RegExp(`SUCCESS: ${rules().length} rules found`));
    });

    it('promtool test rules passes, with a case where each alert fires and one where it does not, and a test of each recorded series', async () => {
      const { code, output } = await promtool('test', 'rules', RULE_TESTS);
      assert.equal(code, 0, output);

      const cases = (parseYaml(readFileSync(RULE_TESTS, 'utf8')) as RuleTestFile).tests;
      const checks = cases.flatMap((c) => c.alert_rule_test ?? []);
      for (const alert of rules().flatMap((rule) => rule.alert ?? [])) {
        assert.ok(checks.some((c) => c.alertname === alert && (c.exp_alerts ?? []).length > 0), `no case where ${alert} fires`);
        assert.ok(checks.some((c) => c.alertname === alert && (c.exp_alerts ?? []).length === 0), `no case where ${alert} does not fire`);
      }
      const tested = new Set(cases.flatMap((c) => (c.promql_expr_test ?? []).flatMap((t) => metricNames(t.expr))));
      for (const record of rules().flatMap((rule) => rule.record ?? [])) assert.ok(tested.has(record), `no promql_expr_test reads ${record}`);
    });
  });

  describe('a real Prometheus scraping a worker, a dispatcher and ingest', () => {
    const jobs = { worker: 'outbox-sync-worker', dispatcher: 'outbox-sync-dispatcher', ingest: 'outbox-sync-ingest' };
    let pipeline: TestPipeline;
    let processes: ProcessGroup;
    let prometheus: PrometheusServer;
    let poison: number;
    let good: number;

    before(async function () {
      this.timeout(60_000);
      // Two executions of two attempts each: the poison message is executed again once (a re-execution),
      // then declared dead by the redriver, in a few seconds.
      pipeline = await TestPipeline.create({
        env: { OUTBOX_SYNC_MAX_EXECUTIONS: '2', OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS: '2', INGEST_TOKENS: 'metrics-test=prometheus-test-token-1' },
      });
      await pipeline.targetAdmin(`
        CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'poison record refused by the target'; END $$;
        CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON synced_records
          FOR EACH ROW WHEN (NEW.entity_key = 'poison') EXECUTE FUNCTION refuse_poison();`);
      processes = new ProcessGroup(pipeline);
      const [worker, dispatcher, ingest] = [await freePort(), await freePort(), await freePort()];
      processes.start('worker', { OUTBOX_SYNC_METRICS_ADDRESS: `127.0.0.1:${worker}` });
      processes.start('dispatcher', { OUTBOX_SYNC_METRICS_ADDRESS: `127.0.0.1:${dispatcher}` });
      processes.start('ingest', { INGEST_PORT: String(ingest) });
      prometheus = await PrometheusServer.start({
        interval: '1s',
        ruleFiles: [RULES],
        jobs: [
          { job: jobs.worker, targets: [`127.0.0.1:${worker}`] },
          { job: jobs.dispatcher, targets: [`127.0.0.1:${dispatcher}`] },
          { job: jobs.ingest, targets: [`127.0.0.1:${ingest}`] },
        ],
      });
      // The alert fires on a rise of the dead count: Prometheus must have seen it at 0 first.
      await waitFor('Prometheus to record no dead message', async () =>
        (await prometheus.query('outbox_sync:messages:max{status="dead"} == 0')).length === 1 ? true : undefined,
      );
      poison = await enqueue(pipeline.stores.outbox, { entity: 'order', key: 'poison', data: { p: 1 } });
      good = await enqueue(pipeline.stores.outbox, { entity: 'order', key: 'good', data: { g: 1 } });
    });

    after(async () => {
      await prometheus?.stop();
      await processes?.killAll();
      await pipeline?.close();
    });

    /** Resolves once both messages are done and every target has been scraped after that. */
    async function scrapedAfterOutcomes(): Promise<void> {
      await pipeline.waitForStatus([poison], ['dead']);
      await pipeline.waitForStatus([good], ['completed']);
      const since = Date.now() + 500; // a scrape starting later sees every counter the outcomes moved
      await waitFor('a scrape of every target after the outcomes', async () => {
        const targets = await prometheus.targets();
        return targets.length === 3 && targets.every((t) => t.health === 'up' && Date.parse(t.lastScrape) > since) ? true : undefined;
      });
    }

    it('scrapes every target (each up) and evaluates every rule without error', async () => {
      // A process answers once it has started: a first scrape may find it down.
      let targets = await prometheus.targets();
      await waitFor('every target up', async () => {
        targets = await prometheus.targets();
        return targets.length === 3 && targets.every((t) => t.health === 'up') ? true : undefined;
      }).catch(() => undefined);
      for (const target of targets) assert.equal(target.health, 'up', `${target.labels.job} at ${target.scrapeUrl}: ${target.lastError}`);
      assert.deepEqual(targets.map((t) => t.labels.job).sort(), Object.values(jobs).sort());

      const loaded = await waitFor('every rule evaluated', async () => {
        const found = await prometheus.rules();
        return found.every((rule) => rule.health !== 'unknown') ? found : undefined;
      });
      assert.deepEqual(loaded.map((rule) => rule.name), rules().map((rule) => rule.record ?? rule.alert));
      for (const rule of loaded) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
    });

    it('fires OutboxSyncMessagesDead through the HTTP API once a message goes dead, and no other alert fires', async () => {
      const [dead] = await pipeline.waitForStatus([poison], ['dead']);
      assert.equal(dead!.executions, 2);
      const alert = await waitFor('OutboxSyncMessagesDead to fire', async () =>
        (await prometheus.alerts()).find((a) => a.labels.alertname === 'OutboxSyncMessagesDead' && a.state === 'firing'),
      );
      assert.equal(alert.labels.severity, 'warning');
      assert.equal(alert.labels.status, 'dead');
      assert.equal(alert.annotations.summary, 'A message went dead: 1 dead in the outbox');
      assert.match(alert.annotations.runbook!, /outbox-sync retry --dead/);
      const firing = (await prometheus.alerts()).filter((a) => a.state === 'firing').map((a) => a.labels.alertname);
      assert.deepEqual(firing, ['OutboxSyncMessagesDead']);
    });

    it('every metric the rules read is in the scrape of the three processes', async () => {
      await scrapedAfterOutcomes();
      const recorded = new Set(rules().flatMap((rule) => rule.record ?? []));
      const read = new Set(rules().flatMap((rule) => metricNames(rule.expr)).filter((name) => !recorded.has(name)));
      const scraped = new Set(await prometheus.metricNames());
      assert.deepEqual([...read].filter((name) => !scraped.has(name)), [], 'metrics the rules read that no process exports');
    });

    it('the dashboard: its datasource a variable, its jobs those of the processes, each query answered with data, each metric in the scrape', async () => {
      const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
      assert.equal(dashboard.id ?? null, null, 'no id: Grafana gives one on import');
      assert.ok(dashboard.uid && dashboard.title);
      const variables = dashboard.templating.list as { name: string; type: string; query: unknown }[];
      assert.ok(variables.some((v) => v.name === 'datasource' && v.type === 'datasource' && v.query === 'prometheus'), 'a Prometheus datasource variable');
      const panels = dashboard.panels as { id: number; title: string; datasource: { uid: string }; targets: { expr: string; datasource: { uid: string } }[] }[];
      assert.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique');

      // The job variable lists the jobs whose targets export outbox-sync's metrics: the three scraped here.
      const jobVariable = variables.find((v) => v.name === 'job') as { query: { query: string } };
      const selector = /^label_values\((.+), job\)$/.exec(jobVariable.query.query)![1]!;
      assert.deepEqual((await prometheus.api<string[]>('label/job/values', { 'match[]': selector })).sort(), Object.values(jobs).sort());

      await scrapedAfterOutcomes();
      const scraped = new Set(await prometheus.metricNames());
      const missing = new Set<string>();
      for (const panel of panels) {
        assert.equal(panel.datasource.uid, '${datasource}', `panel "${panel.title}" uses the datasource variable`);
        assert.ok(panel.targets.length > 0, `panel "${panel.title}" has a query`);
        for (const target of panel.targets) {
          assert.equal(target.datasource.uid, '${datasource}', `a query of "${panel.title}" uses the datasource variable`);
          assert.match(target.expr, /job=~"\$job"/, `a query of "${panel.title}" keeps to the chosen jobs`);
          // Grafana's variables, as Grafana would fill them in on this Prometheus.
          const expr = target.expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', Object.values(jobs).join('|'));
          for (const name of metricNames(expr)) if (!scraped.has(name)) missing.add(name);
          const result = await prometheus.query(expr);
          if (metricNames(expr).every((name) => scraped.has(name))) assert.ok(result.length > 0, `"${panel.title}" shows no data: ${expr}`);
        }
      }
      assert.deepEqual([...missing], [], 'metrics the dashboard reads that no process exports');
    });
  });
});
