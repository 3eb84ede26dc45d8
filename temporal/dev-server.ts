/**
 * The local Temporal dev server (`temporal server start-dev`) that `dev`, `npm start` and the tests run:
 * SQLite file persistence so history survives a restart, the Web UI, and our search attributes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, openSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { Connection } from '@temporalio/client';
import { packageRoot } from '../config/package-root';
import { SEARCH_ATTRIBUTES } from './search-attributes';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const INSTALL_HINT = `GOBIN=$PWD/.tools/bin go install github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`;

/** `temporal` from TEMPORAL_CLI, PATH or .tools/bin; null when none is installed. */
export function findTemporalBinary(env: NodeJS.ProcessEnv = process.env): string | null {
  const candidates = [
    ...(env.TEMPORAL_CLI ? [env.TEMPORAL_CLI] : []),
    ...(env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'temporal')),
    join(packageRoot, '.tools', 'bin', 'temporal'),
  ];
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not this one
    }
  }
  return null;
}

/**
 * Write-ahead logging with normal sync: commits survive a crash or kill of the server process (what the
 * dev server must survive); only an operating-system crash may lose the last ones. Far fewer fsyncs than
 * the default rollback journal with full sync, which left the server waiting on disk.
 */
export const DEV_SERVER_SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

/** Dynamic config of the dev server (KEY=JSON). */
export const DEV_SERVER_DYNAMIC_CONFIG: string[] = [];

export interface DevServerOptions {
  binary?: string;
  ip?: string;
  port: number;
  /** The Web UI's port; null runs headless. */
  uiPort: number | null;
  dbFile: string;
  namespace?: string;
  logFile?: string;
  extraArgs?: string[];
  /** The codec server the Web UI decodes payloads through, e.g. http://127.0.0.1:8089/codec. */
  uiCodecEndpoint?: string;
}

export interface DevServer {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const binary = options.binary ?? findTemporalBinary();
  if (!binary) throw new Error(`the temporal CLI is not installed; run: ${INSTALL_HINT}`);
  const ip = options.ip ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  mkdirSync(dirname(options.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(options.port),
    '--db-filename',
    options.dbFile,
    '--namespace',
    namespace,
    '--log-level',
    'warn',
    ...DEV_SERVER_SQLITE_PRAGMAS.flatMap((pragma) => ['--sqlite-pragma', pragma]),
    ...DEV_SERVER_DYNAMIC_CONFIG.flatMap((value) => ['--dynamic-config-value', value]),
    ...SEARCH_ATTRIBUTES.flatMap((key) => ['--search-attribute', `${key.name}=Keyword`]),
    ...(options.uiPort === null ? ['--headless'] : ['--ui-port', String(options.uiPort)]),
    ...(options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : []),
    ...(options.extraArgs ?? []),
  ];
  const out = options.logFile ? openSync(options.logFile, 'a') : 'ignore';
  const child = spawn(binary, args, { stdio: ['ignore', out, out] });
  const address = `${ip}:${options.port}`;
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code, signal) => reject(new Error(`temporal dev server exited (${signal ?? code}); see ${options.logFile ?? 'its output'}`))),
  );
  exited.catch(() => undefined);
  try {
    await Promise.race([waitForServer(address, namespace, 60_000), exited]);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    address,
    uiUrl: options.uiPort === null ? null : `http://${ip}:${options.uiPort}`,
    process: child,
    stop: () => stopProcess(child),
  };
}

/** Waits until the server answers for the namespace (a cold start on a busy machine takes a while). */
export async function waitForServer(address: string, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Temporal at ${address} did not answer within ${timeoutMs} ms: ${(lastError as Error)?.message}`);
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
