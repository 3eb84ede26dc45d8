/**
 * Child processes for the tests and the bench, one way: `spawnProcess` starts a command and returns a
 * `ProcessHandle` that collects its output, waits for a line of it, stops it (a signal, then SIGKILL when
 * it does not go) and gives its exit. `spawnCli` is the same for `outbox-sync` itself, `runCli` runs one
 * short command to its end, and `ProcessGroup` kills what a test started when the test ends.
 *
 * It lives here rather than beside the product code because only the tests and `bench/run.ts` spawn the
 * CLI: the bench imports it from test/support, and nothing the package ships imports either.
 *
 * Every handle is known here until its process is gone, so that the leak check after each test can wait
 * for the ones being stopped and name the ones left running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../config/package-root';
import type { TestPipeline } from './pipeline';
import { sampleProcess, type ProcessSample } from './procstat';

export const BIN = join(packageRoot, 'bin', 'outbox-sync');

/** How a process ended: its exit code, or the signal that ended it. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
  /** Keep only the last this many characters of each output (a long run must not grow without end). */
  keepOutput?: number;
  /** How messages about the process name it; the command and its arguments by default. */
  name?: string;
}

/** What `waitFor` waits for in the output so far: a line's text, a pattern, or any test of the whole. */
export type OutputMatch = string | RegExp | ((output: string) => boolean);

const live = new Set<ProcessHandle>();

export class ProcessHandle {
  readonly child: ChildProcess;
  readonly name: string;
  /** Resolves once the process has exited and its output is all read; rejects if it could not start. */
  readonly exited: Promise<ProcessExit>;
  /** The highest resident set size the kernel saw for this process (VmHWM), in bytes, as last sampled. */
  peakRss = 0;
  private stopping: Promise<ProcessExit> | null = null;
  /** Exited with all its output read, or never started. */
  private closed = false;
  private readonly text = { output: '', stdout: '', stderr: '' };
  private readonly listeners = new Set<() => void>();

  constructor(options: SpawnOptions) {
    this.name = options.name ?? [options.command, ...options.args].join(' ');
    this.child = spawn(options.command, options.args, {
      env: options.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const keep = options.keepOutput ?? Infinity;
    const collect = (stream: 'stdout' | 'stderr') => (chunk: string) => {
      this.text[stream] = (this.text[stream] + chunk).slice(-keep);
      this.text.output = (this.text.output + chunk).slice(-keep);
      for (const listener of this.listeners) listener();
    };
    this.child.stdout!.setEncoding('utf8').on('data', collect('stdout'));
    this.child.stderr!.setEncoding('utf8').on('data', collect('stderr'));
    if (options.input !== undefined) this.child.stdin!.end(options.input);
    live.add(this);
    this.exited = new Promise<ProcessExit>((resolve, reject) => {
      this.child.once('error', (err) => {
        this.closed = true;
        live.delete(this);
        for (const listener of this.listeners) listener();
        reject(new Error(`${this.name} could not start: ${err.message}`, { cause: err }));
      });
      this.child.once('close', (code, signal) => {
        this.closed = true;
        live.delete(this);
        resolve({ code, signal });
        for (const listener of this.listeners) listener();
      });
    });
    this.exited.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Neither exited nor killed by a signal yet. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** stdout and stderr so far, interleaved as they came. */
  output(): string {
    return this.text.output;
  }

  stdout(): string {
    return this.text.stdout;
  }

  stderr(): string {
    return this.text.stderr;
  }

  /**
   * Resolves as soon as the output so far contains `match` (a string is looked for as it is, a pattern is
   * tested against the whole output); rejects when the process ends first or `timeoutMs` passes, with the
   * end of its output.
   */
  waitFor(match: OutputMatch, timeoutMs = 60_000): Promise<void> {
    const found =
      typeof match === 'string' ? (text: string) => text.includes(match) : match instanceof RegExp ? (text: string) => match.test(text) : match;
    const what = typeof match === 'function' ? 'its awaited output' : String(match);
    return new Promise((resolve, reject) => {
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (found(this.text.output)) finish();
        else if (this.closed) {
          const how = this.child.signalCode ?? this.child.exitCode;
          finish(new Error(`${this.name} exited (${how}) before it printed ${what}:\n${this.text.output.slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => finish(new Error(`${this.name} did not print ${what} within ${timeoutMs} ms:\n${this.text.output.slice(-2000)}`)), timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /**
   * Sends `signal` and resolves with the exit; SIGKILL follows if the process is still there after
   * `timeoutMs`. Asking again while it stops returns the same exit.
   */
  stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<ProcessExit> {
    this.samplePeakRss();
    if (!this.alive) return this.exited;
    if (signal === 'SIGKILL' || !this.stopping) {
      this.child.kill(signal);
      if (signal !== 'SIGKILL') {
        const force = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
        void this.exited.finally(() => clearTimeout(force)).catch(() => undefined);
      }
      this.stopping = this.exited;
    }
    return this.exited;
  }

  kill(): Promise<ProcessExit> {
    return this.stop('SIGKILL');
  }

  get stopRequested(): boolean {
    return this.stopping !== null;
  }

  /** CPU and memory now, from /proc; null once the process is gone. */
  sample(): ProcessSample | null {
    return this.pid === undefined ? null : sampleProcess(this.pid);
  }

  /** Reads the peak RSS so far (it is kept after the process is gone). */
  samplePeakRss(): number {
    this.peakRss = Math.max(this.peakRss, this.sample()?.peakRssBytes ?? 0);
    return this.peakRss;
  }

  /** The resident set size now (VmRSS), in bytes; 0 once the process is gone. */
  currentRss(): number {
    return this.sample()?.rssBytes ?? 0;
  }
}

export function spawnProcess(options: SpawnOptions): ProcessHandle {
  return new ProcessHandle(options);
}

/**
 * `outbox-sync ARGS` as a child process, through the launcher a user runs, with `env` as its whole
 * environment; `nodeArgs` reach node through the launcher's OUTBOX_SYNC_NODE_ARGS.
 */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv, options: { nodeArgs?: string[]; input?: string; keepOutput?: number; cwd?: string } = {}): ProcessHandle {
  return spawnProcess({
    command: BIN,
    args,
    env: options.nodeArgs?.length ? { ...env, OUTBOX_SYNC_NODE_ARGS: options.nodeArgs.join(' ') } : env,
    cwd: options.cwd,
    input: options.input,
    keepOutput: options.keepOutput,
    name: `outbox-sync ${args.join(' ')}`,
  });
}

/**
 * This process's environment without the project's own settings, so that a developer's OUTBOX_* or
 * TEMPORAL_* never reaches a child, and `settings` over it.
 */
export function childEnv(settings: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(([name]) => !/^(OUTBOX_|TARGET_DATABASE_URL$|REDIS_URL$|TEMPORAL_|INGEST_)/.test(name));
  return { ...Object.fromEntries(inherited), ...settings };
}

/** What one run of a short CLI command gave. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `outbox-sync ARGS` to its end with `env`, feeding `input` (if any) on stdin. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<CliRun> {
  const run = spawnCli(args, env, { input, cwd: packageRoot });
  const { code } = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** A process a test started through a ProcessGroup. */
export type RunningProcess = ProcessHandle;

/** The CLI's long-running commands as child processes of a test, killed when the test ends. */
export class ProcessGroup {
  private readonly handles: ProcessHandle[] = [];

  constructor(private readonly pipeline: TestPipeline) {}

  /** `outbox-sync COMMAND` with the pipeline's settings and `env` over them. */
  start(command: string, env: Record<string, string> = {}): ProcessHandle {
    const handle = spawnCli([command], this.pipeline.processEnv(env));
    this.handles.push(handle);
    return handle;
  }

  /** SIGKILLs every process still running and resolves once all are gone. */
  async killAll(): Promise<void> {
    await Promise.all(this.handles.splice(0).map((handle) => handle.kill()));
  }
}

/** The handles whose process has not exited yet. */
export function liveProcesses(): ProcessHandle[] {
  return [...live];
}

/** Waits (up to `timeoutMs`) for the processes already asked to stop, so that what is left is a leak. */
export async function settleStoppingProcesses(timeoutMs: number): Promise<void> {
  const stopping = liveProcesses().filter((handle) => handle.stopRequested);
  if (stopping.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled(stopping.map((handle) => handle.exited)),
    new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
  ]);
  clearTimeout(timer);
}
