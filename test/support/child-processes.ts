/**
 * `outbox-sync worker` and `outbox-sync dispatcher` as real child processes, so a test can SIGKILL them,
 * restart them, and read their peak memory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../config/package-root';

const BIN = join(packageRoot, 'bin', 'outbox-sync');

export type ProcessKind = 'worker' | 'dispatcher';

export class ChildProcessHandle {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The highest resident set size seen by the kernel for this process (VmHWM), in bytes. */
  peakRss = 0;

  constructor(
    readonly kind: ProcessKind,
    readonly child: ChildProcess,
  ) {
    const keep = (chunk: Buffer) => {
      // Enough of the end to explain a failure, without growing for the length of a long run.
      this.output = (this.output + chunk.toString()).slice(-20_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Reads the process's peak RSS so far from /proc (Linux); kept after the process is gone. */
  samplePeakRss(): number {
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
      if (match) this.peakRss = Math.max(this.peakRss, Number(match[1]) * 1024);
    } catch {
      // gone already
    }
    return this.peakRss;
  }

  /** The resident set size now (VmRSS), in bytes; 0 once the process is gone. */
  currentRss(): number {
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
      return match ? Number(match[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.samplePeakRss();
    if (this.alive) this.child.kill(signal);
    await this.exited;
  }
}

export function startProcess(kind: ProcessKind, env: NodeJS.ProcessEnv): ChildProcessHandle {
  const child = spawn(process.execPath, [BIN, kind], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new ChildProcessHandle(kind, child);
}
