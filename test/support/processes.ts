/** The CLI's long-running commands as child processes of a test, killed when the test ends. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../database/package-root';
import type { TestPipeline } from './pipeline';

export { freeLoopbackPort as freePort } from '../../client/processes';

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

