/**
 * The chaos suite's own world, so that its faults touch no one else: a Temporal dev server on a SQLite
 * file in a temporary directory (stopped and restarted on the same file), a redis-server on a free port
 * (flushed and restarted), its own outbox and target databases (test/chaos/target.ts: synced_records or a
 * user's table in PostgreSQL or MariaDB), the target and Redis each behind a fault proxy, and the
 * worker and dispatcher as `outbox-sync` child processes under a small supervisor that restarts them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import pg from 'pg';
import { loadConfig } from '../../config/config';
import { Cache, type StreamName } from '../../stores/cache';
import { PUBLISH_LOCK } from '../../stores/outbox/stream-cursor';
import { pgSettings } from '../../stores/postgres/connect';
import { databaseUrl, dropDatabase, migrateDatabase } from '../../stores/postgres/migrate';
import { startDevServer, type DevServer } from '../../temporal/dev-server';
import { FaultProxy } from '../support/fault-proxy';
import { childEnv, spawnCli, type ProcessHandle } from '../support/processes';
import { openChaosTarget, terminatePostgresConnections, type ChaosTarget, type ChaosTargetKind } from './target';
import { freePort } from '../support/stack';

/** The harness's own connections carry this name, so that the faults it injects spare them. */
export const HARNESS_APPLICATION = 'outbox-sync-chaos-harness';

export interface EnvironmentOptions {
  target: ChaosTargetKind;
  /** The workload's entity, mapped to the user's table when `target` is one. */
  entity: string;
  workers: number;
  dispatchers: number;
  /** Settings for the child processes, by their environment names. */
  settings: Record<string, string>;
  log: (line: string) => void;
}

export type ProcessKind = 'worker' | 'dispatcher';

/** One supervised process: when it dies, it is started again, as systemd or Kubernetes would. */
interface Slot {
  kind: ProcessKind;
  current: ProcessHandle;
  /** Peak RSS of the processes this slot ran before the current one. */
  pastPeakRss: number;
  plannedKill: boolean;
}

export interface UnplannedExit {
  kind: ProcessKind;
  code: number | null;
  signal: string | null;
  lastOutput: string;
}

export class ChaosEnvironment {
  readonly slots: Slot[] = [];
  readonly unplannedExits: UnplannedExit[] = [];
  private closing = false;
  private redisProcess: ChildProcess | undefined;

  private constructor(
    readonly dir: string,
    readonly name: string,
    readonly postgresUrl: string,
    private temporal: DevServer,
    private readonly temporalOptions: Parameters<typeof startDevServer>[0],
    readonly redisPort: number,
    /** What our processes (and the stream consumer) reach Redis through; the harness itself goes direct. */
    readonly redisProxy: FaultProxy,
    /** Where the messages land, behind its fault proxy. */
    readonly target: ChaosTarget,
    readonly childEnv: NodeJS.ProcessEnv,
    /** The harness's connections to the outbox and Redis. */
    readonly outbox: pg.Pool,
    readonly redis: Redis,
    private readonly log: (line: string) => void,
  ) {}

  static async start(options: EnvironmentOptions): Promise<ChaosEnvironment> {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-sync-chaos-'));
    const name = `outbox_sync_chaos_${randomBytes(4).toString('hex')}`;
    const postgresUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://127.0.0.1:5432/postgres';

    await migrateDatabase(databaseUrl(postgresUrl, `${name}_outbox`), 'outbox');
    const target = await openChaosTarget({ kind: options.target, name, dir, postgresUrl, entity: options.entity, harness: HARNESS_APPLICATION });

    const temporalOptions = { port: await freePort(), uiPort: null, dbFile: join(dir, 'temporal.sqlite'), logFile: join(dir, 'temporal.log') };
    const temporal = await startDevServer(temporalOptions);
    const redisPort = await freePort();
    const redisProxy = await FaultProxy.start('127.0.0.1', redisPort);
    const processEnv = childEnv({
      OUTBOX_DATABASE_URL: databaseUrl(postgresUrl, `${name}_outbox`),
      ...target.env,
      REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      OUTBOX_SYNC_TASK_QUEUE: name,
      ...options.settings,
    });
    const harness = { application_name: HARNESS_APPLICATION, max: 4 };
    const outbox = new pg.Pool(pgSettings(databaseUrl(postgresUrl, `${name}_outbox`), harness));
    outbox.on('error', () => undefined);
    if (target.kind !== 'synced') {
      // The bookkeeping table in the user's database, as an operator makes it.
      const migrate = spawnCli(['migrate'], processEnv);
      const { code } = await migrate.exited;
      if (code !== 0) throw new Error(`outbox-sync migrate exited ${code}: ${migrate.output()}`);
    }
    const redis = new Redis({ port: redisPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 20 });
    redis.on('error', () => undefined);

    const env = new ChaosEnvironment(dir, name, postgresUrl, temporal, temporalOptions, redisPort, redisProxy, target, processEnv, outbox, redis, options.log);
    await env.startRedis();
    for (let i = 0; i < options.workers; i++) env.supervise('worker');
    for (let i = 0; i < options.dispatchers; i++) env.supervise('dispatcher');
    return env;
  }

  get outboxDatabase(): string {
    return `${this.name}_outbox`;
  }

  get temporalAddress(): string {
    return this.temporal.address;
  }

  /** `outbox-sync worker|dispatcher`, keeping the end of its output (enough to explain an exit). */
  private startProcess(kind: ProcessKind): ProcessHandle {
    return spawnCli([kind], this.childEnv, { keepOutput: 20_000 });
  }

  private supervise(kind: ProcessKind): void {
    const slot: Slot = { kind, current: this.startProcess(kind), pastPeakRss: 0, plannedKill: false };
    this.slots.push(slot);
    this.watch(slot);
  }

  private watch(slot: Slot): void {
    const handle = slot.current;
    void handle.exited.then(async ({ code, signal }) => {
      slot.pastPeakRss = Math.max(slot.pastPeakRss, handle.peakRss);
      if (this.closing) return;
      if (slot.plannedKill) {
        slot.plannedKill = false;
      } else {
        this.unplannedExits.push({ kind: slot.kind, code, signal, lastOutput: handle.output().split('\n').slice(-5).join('\n') });
        this.log(`  ${slot.kind} exited on its own (${signal ?? code}); restarting it`);
        await new Promise((r) => setTimeout(r, 1000));
        if (this.closing) return;
      }
      slot.current = this.startProcess(slot.kind);
      this.watch(slot);
    });
  }

  /** SIGKILLs one process of a kind; the supervisor starts a new one at once. Returns the pid killed. */
  async kill(kind: ProcessKind, pick: number): Promise<number> {
    const slots = this.slots.filter((s) => s.kind === kind);
    const slot = slots[pick % slots.length]!;
    const victim = slot.current;
    slot.plannedKill = true;
    await victim.kill();
    // Wait for the replacement, so the next fault does not find the slot between processes.
    while (slot.current === victim) await new Promise((r) => setTimeout(r, 20));
    return victim.pid!;
  }

  /** Samples every live process's peak RSS; returns the peak per kind over all processes so far. */
  samplePeakRss(): Record<ProcessKind, number> {
    const peak: Record<ProcessKind, number> = { worker: 0, dispatcher: 0 };
    for (const slot of this.slots) {
      const now = slot.current.alive ? slot.current.samplePeakRss() : slot.current.peakRss;
      peak[slot.kind] = Math.max(peak[slot.kind], slot.pastPeakRss, now);
    }
    return peak;
  }

  /** The current resident size of the live processes of a kind (the largest), from /proc. */
  currentRss(kind: ProcessKind): number {
    let max = 0;
    for (const slot of this.slots.filter((s) => s.kind === kind)) max = Math.max(max, slot.current.currentRss());
    return max;
  }

  async restartTemporal(downMs: number): Promise<void> {
    await this.temporal.stop();
    await new Promise((r) => setTimeout(r, downMs));
    this.temporal = await startDevServer(this.temporalOptions);
  }

  async startRedis(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], {
      stdio: 'ignore',
    });
    this.redisProcess = child;
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        if (this.redis.status === 'wait' || this.redis.status === 'end') await this.redis.connect().catch(() => undefined);
        if ((await this.redis.ping()) === 'PONG') return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.redisPort} did not start`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILLs redis-server (its contents are lost: it keeps nothing on disk) and starts it again. */
  async restartRedis(downMs: number): Promise<void> {
    const child = this.redisProcess!;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    await new Promise((r) => setTimeout(r, downMs));
    await this.startRedis();
  }

  /** Cuts our processes off Redis (it keeps its data) for `ms`, then lets them reach it again. */
  async redisUnreachable(ms: number): Promise<void> {
    this.redisProxy.refuse();
    await new Promise((r) => setTimeout(r, ms));
    await this.redisProxy.restore();
  }

  /** The key of a stream as our processes name it (their OUTBOX_SYNC_REDIS_PREFIX). */
  streamKey(stream: StreamName): string {
    return new Cache(this.redis, loadConfig(this.childEnv).redisPrefix, 1000).streamKey(stream);
  }

  /** The newest entry's id on each stream, read from Redis directly; null for a stream with none. */
  async lastStreamIds(): Promise<Record<StreamName, string | null>> {
    const last = async (stream: StreamName) => ((await this.redis.xrevrange(this.streamKey(stream), '+', '-', 'COUNT', 1))[0]?.[0] ?? null);
    return { succeeded: await last('succeeded'), failed: await last('failed') };
  }

  /**
   * Runs `work` while the harness holds the streams' publish lock (stores/outbox/stream-cursor.ts): every
   * publisher's pass skips its turn meanwhile, and the pass under way, if any, has ended when `work` starts.
   */
  async withPublishersHeld<T>(work: () => Promise<T>): Promise<T> {
    const client = await this.outbox.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [PUBLISH_LOCK]);
      return await work();
    } finally {
      await client.query('COMMIT').catch(() => undefined);
      client.release();
    }
  }

  /** Terminates every connection to the outbox database except the harness's own. Returns how many. */
  terminateOutboxConnections(): Promise<number> {
    return terminatePostgresConnections(this.postgresUrl, this.outboxDatabase, HARNESS_APPLICATION);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.current.kill()));
    await this.temporal.stop().catch(() => undefined);
    if (this.redisProcess && this.redisProcess.exitCode === null) {
      const exited = new Promise((resolve) => this.redisProcess!.once('exit', resolve));
      this.redisProcess.kill('SIGKILL');
      await exited;
    }
    this.redis.disconnect();
    await this.redisProxy.close();
    await this.outbox.end().catch(() => undefined);
    await this.target.close();
    await dropDatabase(this.postgresUrl, this.outboxDatabase);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
