/** The CLI's long-running commands as child processes of a test, killed when the test ends. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../config/package-root';
import type { TestPipeline } from './pipeline';

export const BIN = join(packageRoot, 'bin', 'outbox-sync');

export interface RunningProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  /** stdout and stderr so far, interleaved. */
  output: () => string;
  stderr: () => string;
}

export class ProcessGroup {
  private readonly children: ChildProcess[] = [];

  constructor(private readonly pipeline: TestPipeline) {}

  start(command: string, env: Record<string, string> = {}): RunningProcess {
    const child = spawn(process.execPath, [BIN, command], { env: this.pipeline.processEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    let output = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (output += chunk));
    child.stderr!.on('data', (chunk) => {
      output += chunk;
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return { child, exited, output: () => output, stderr: () => stderr };
  }

  killAll(): void {
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    this.children.length = 0;
  }
}

/** What one run of a short CLI command gave. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `outbox-sync ARGS` to its end with `env`, feeding `input` (if any) on stdin. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<CliRun> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: packageRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}
