/**
 * A real Prometheus for a test (Debian's `prometheus` package, as `.ci/run` installs it): its own loopback
 * port and data folder, the scrape and rule evaluation intervals the test asks for, and the rule files it
 * names; `stop()` kills it and removes the folder. Its HTTP API is read through the few calls the tests use.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnProcess, type ProcessHandle } from './processes';
import { freePort } from './stack';
import { waitFor } from './pipeline';

export const INSTALL_HINT = "install Debian's prometheus package: apt-get install prometheus";

export interface ScrapeJob {
  job: string;
  /** host:port of each target; each serves GET /metrics. */
  targets: string[];
}

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  ruleFiles: string[];
  /** Scrape and evaluation interval, e.g. '1s'. */
  interval: string;
}

export interface ActiveTarget {
  labels: Record<string, string>;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
  /** When the last scrape started (RFC 3339). */
  lastScrape: string;
  scrapeUrl: string;
}

export interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  value: string;
}

export interface LoadedRule {
  type: 'recording' | 'alerting';
  name: string;
  query: string;
  health: 'ok' | 'err' | 'unknown';
  lastError?: string;
}

export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export class PrometheusServer {
  private constructor(
    readonly url: string,
    private readonly child: ProcessHandle,
    private readonly dir: string,
  ) {}

  static async start(options: PrometheusOptions): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-sync-prometheus-'));
    // JSON is YAML: the configuration needs no YAML writer.
    const config = {
      global: { scrape_interval: options.interval, scrape_timeout: options.interval, evaluation_interval: options.interval },
      rule_files: options.ruleFiles,
      scrape_configs: options.jobs.map(({ job, targets }) => ({ job_name: job, static_configs: [{ targets }] })),
    };
    writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config, null, 2));
    const address = `127.0.0.1:${await freePort()}`;
    const child = spawnProcess({
      command: 'prometheus',
      args: [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${address}`, '--log.level=warn'],
      keepOutput: 20_000,
      name: 'prometheus',
    });
    const server = new PrometheusServer(`http://${address}`, child, dir);
    let ended: Error | undefined;
    child.exited.then(
      (exit) => (ended = new Error(`prometheus exited (${exit.code ?? exit.signal}) before it was ready:\n${child.output()}`)),
      (err: Error) => (ended = new Error(`${err.message} (${INSTALL_HINT})`)),
    );
    try {
      await waitFor('Prometheus to be ready', async () => {
        if (ended) throw ended;
        const ready = await fetch(`${server.url}/-/ready`).catch(() => null);
        return ready?.ok ? true : undefined;
      });
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  /** GET /api/v1/PATH and its `data`; throws with Prometheus's own error when the call fails. */
  async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const response = await fetch(`${this.url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path} ${JSON.stringify(params)}: ${body.error}`);
    return body.data;
  }

  async query(expr: string): Promise<VectorSample[]> {
    const data = await this.api<{ resultType: string; result: VectorSample[] }>('query', { query: expr });
    return data.result;
  }

  async targets(): Promise<ActiveTarget[]> {
    return (await this.api<{ activeTargets: ActiveTarget[] }>('targets', { state: 'active' })).activeTargets;
  }

  async alerts(): Promise<Alert[]> {
    return (await this.api<{ alerts: Alert[] }>('alerts')).alerts;
  }

  async rules(): Promise<LoadedRule[]> {
    const data = await this.api<{ groups: { rules: LoadedRule[] }[] }>('rules');
    return data.groups.flatMap((group) => group.rules);
  }

  /** Every metric name Prometheus holds a series of (scraped, or recorded by a rule). */
  async metricNames(): Promise<string[]> {
    return this.api<string[]>('label/__name__/values');
  }

  async stop(): Promise<void> {
    await this.child.kill().catch(() => undefined); // one that never started was reported by start()
    rmSync(this.dir, { recursive: true, force: true });
  }
}
