/**
 * `npm run bench -- --cluster`: the production Temporal server of scripts/cluster.sh (frontend, history,
 * matching and worker as four processes, PostgreSQL persistence and visibility, mTLS) as the bench's
 * Temporal, and the table that sets its run beside the dev server's. The run has a task queue and workflow
 * ids of its own in the cluster's namespace; its closed executions stay there until the retention expires.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../config/package-root';
import { findProcesses } from '../test/support/procstat';
import type { BenchResult, Cost, ExistingTemporal } from './run';

const SCRIPT = join(packageRoot, 'scripts', 'cluster.sh');
const DIR = join(packageRoot, '.tools', 'cluster');
const SERVICES = ['frontend', 'history', 'matching', 'worker'];
/** The settings of the product that the cluster's env file exports (the rest of it serves the temporal CLI). */
const SETTINGS = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_TLS', 'TEMPORAL_TLS_CA_FILE', 'TEMPORAL_TLS_CERT_FILE', 'TEMPORAL_TLS_KEY_FILE', 'TEMPORAL_TLS_SERVER_NAME'];

/**
 * Runs `run` against the cluster, started with `scripts/cluster.sh up` when `status` says it is not
 * running; the services this started are stopped afterwards, so the cluster is left as it was found.
 */
export async function withCluster<T>(progress: (line: string) => void, run: (temporal: ExistingTemporal) => Promise<T>): Promise<T> {
  const status = spawnSync('bash', [SCRIPT, 'status'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const wasRunning = SERVICES.filter((svc) => new RegExp(`^${svc}\\s+running`, 'm').test(status.stdout));
  const started = status.status === 0 ? [] : SERVICES.filter((svc) => !wasRunning.includes(svc));
  if (status.status !== 0) {
    progress('starting the Temporal cluster (scripts/cluster.sh up)');
    cluster('up');
  }
  try {
    return await run(existingCluster());
  } finally {
    if (started.length > 0) {
      progress(`stopping the cluster's ${started.join(', ')} (scripts/cluster.sh stop), as they were not running before`);
      cluster('stop', ...started);
    }
  }
}

/** scripts/cluster.sh COMMAND, its output on our stderr (stdout carries the table and the JSON). */
function cluster(...args: string[]): void {
  execFileSync('bash', [SCRIPT, ...args], { stdio: ['ignore', 2, 2] });
}

function existingCluster(): ExistingTemporal {
  // The env file is shell (printf %q): let bash read it, in an empty environment. (Its stdin must not be
  // node's socket: bash on a socket takes itself for a remote shell and reads ~/.bashrc.)
  const exported = execFileSync('env', ['-i', 'bash', '-c', '. "$1" && env -0', '_', join(DIR, 'env')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const env = Object.fromEntries(
    exported
      .split('\0')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])
      .filter(([name]) => SETTINGS.includes(name!)),
  ) as Record<string, string>;
  const services = Object.fromEntries(SERVICES.map((svc) => [svc, Number(readFileSync(join(DIR, 'pids', `${svc}.pid`), 'utf8').trim())]));
  const version = execFileSync(join(packageRoot, '.tools', 'bin', 'temporal-server'), ['--version'], { encoding: 'utf8' }).trim();
  const databases = [process.env.OUTBOX_SYNC_CLUSTER_DB ?? 'outbox_sync_temporal', process.env.OUTBOX_SYNC_CLUSTER_VISIBILITY_DB ?? 'outbox_sync_temporal_visibility'];
  return {
    env,
    describe: `cluster at ${env.TEMPORAL_ADDRESS} over mTLS (scripts/cluster.sh, ${version}, ${SERVICES.join('/')} as four processes, PostgreSQL persistence and visibility)`,
    services,
    persistence: () => postgresBackends(databases),
  };
}

/** The PostgreSQL backends connected to these databases, by their process title ("postgres: 15/main: root DB 127.0.0.1(…) idle"). */
function postgresBackends(databases: string[]): number[] {
  return findProcesses((cmdline) => {
    const database = /^postgres: (?:\S+: )?\S+ (\S+) /.exec(cmdline)?.[1];
    return database !== undefined && databases.includes(database);
  });
}

/** The dev server's run and the cluster's side by side, with the cluster's figure over the dev server's. */
export function formatComparison(dev: BenchResult, cluster: BenchResult): string {
  const at50 = (r: BenchResult) => r.steady.find((s) => s.fraction === 0.5);
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b !== null && b !== undefined ? (b / a).toFixed(2) : '');
  const row = (measure: string, a: number | null | undefined, b: number | null | undefined, show = (v: number) => `${v}`) =>
    `| ${measure} | ${a === null || a === undefined ? '–' : show(a)} | ${b === null || b === undefined ? '–' : show(b)} | ${ratio(a, b)} |`;
  const d = dev.drain.cpuPer1000;
  const c = cluster.drain.cpuPer1000;
  const withPersistence = (cost: Cost) => (cost.temporal === null ? null : cost.temporal + (cost.temporalPostgres ?? 0));
  const total = withPersistence(c);
  const share = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${v} (${total ? Math.round((v / total) * 100) : '?'} %)`);
  const [dev50, cluster50] = [at50(dev), at50(cluster)];
  const lines = [
    `machine   ${dev.machine.cores} cores (${dev.machine.cpu}), ${dev.machine.memoryGiB} GiB; load average ${dev.machine.loadAverageAtStart.join(' ')} at start, ${cluster.machine.loadAverageAtEnd.join(' ')} at end`,
    `versions  ${Object.entries(dev.versions).map(([k, v]) => `${k} ${v.replace(/\s+/g, ' ')}`).join('; ')}`,
    `settings  ${Object.entries(dev.settings).filter(([k]) => k !== 'temporal').map(([k, v]) => `${k}=${v}`).join('; ')}`,
    `temporal  dev server: ${dev.settings.temporal}; cluster: ${cluster.settings.temporal}`,
    '',
    `| measure | dev server | cluster | cluster / dev server |`,
    `|---|---|---|---|`,
    row(`drain: ${dev.drain.messages} messages over ${dev.drain.keys} keys, seconds`, dev.drain.seconds, cluster.drain.seconds),
    row('drain: messages/s', dev.drain.rate, cluster.drain.rate, (v) => `**${v}**`),
    `| steady at 50 % of each one's drain rate: msg/s | ${dev50?.targetRate ?? '–'} | ${cluster50?.targetRate ?? '–'} | ${ratio(dev50?.targetRate, cluster50?.targetRate)} |`,
    row('steady at 50 %: p99 enqueue→completed, ms', dev50?.latencyMs.p99, cluster50?.latencyMs.p99, (v) => `**${v}**`),
    row('CPU s per 1,000 messages, drain: worker', d.worker, c.worker),
    row('… dispatcher', d.dispatcher, c.dispatcher),
    row('… Temporal (dev server: one process; cluster: its four services)', d.temporal, c.temporal),
    ...Object.entries(c.temporalServices ?? {}).map(([svc, v]) => `| … … ${svc} | | ${share(v)} | |`),
    `| … PostgreSQL backends of the cluster's two databases | (SQLite, inside the dev server) | ${share(c.temporalPostgres)} | |`,
    row('… Temporal with its persistence (100 % of the shares above)', withPersistence(d), total === null ? null : Math.round(total * 100) / 100),
    ...(dev.baseline
      ? [
          `| baseline: relay without Temporal (run once, in the dev server's pass) | ${dev.baseline.seconds} s, **${dev.baseline.rate} msg/s** | | |`,
          `| pipeline / baseline | **${Math.round((dev.drain.rate / dev.baseline.rate) * 100)} %** | **${Math.round((cluster.drain.rate / dev.baseline.rate) * 100)} %** | |`,
        ]
      : []),
  ];
  return lines.join('\n');
}
