/**
 * What every `outbox-sync` command shares: the exit codes (0 success, 2 bad usage or invalid input, 1 a
 * runtime failure), the one line on stderr that reports either, the stores a command opens for its run,
 * and the parsing of the arguments several commands take.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/config';
import pg from 'pg';
import { pgSettings } from '../stores/postgres/connect';
import { TargetsError } from '../stores/target/mapping';
import { Targets } from '../stores/target/targets';
import { openStores, type Stores } from '../stores/stores';
import { InvalidMessageError } from '../stores/outbox/validate';
import { IdempotencyConflictError } from '../stores/outbox/enqueue';
import { PgErrorCode, sqlState } from '../stores/postgres/errors';
import { describeAddress } from '../stores/target/mapping';
import { isUnreachable, plainReason } from '../stores/unreachable';
import { StartStopped } from '../servers/until-signal';

/** Wrong arguments or input: exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The program every command is added to, reporting Commander's own usage errors in the same one-line form as ours. */
export function createProgram(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`${name}: ${text.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim()}\n`) });
}

/**
 * Adds a long-running process's command: it takes no arguments, loads the settings and runs until a
 * signal. `run` imports the process's module only when chosen, so a one-shot command loads none of them.
 * A process that fails exits at once with the one line and its code: whatever it had opened (pools, a
 * Redis client retrying, the SDK's runtime) must not keep a dead process alive under a supervisor.
 */
export function addProcess(program: Command, name: string, description: string, run: (config: Config) => Promise<void>): void {
  program
    .command(name)
    .description(description)
    .action(async () => {
      try {
        await run(loadConfig());
      } catch (err) {
        if (err instanceof StartStopped) return; // a signal while waiting for a dependency: a normal end
        report(program, err);
        process.exit(exitCodeFor(err));
      }
    });
}

/** Runs the command line; sets process.exitCode (2 for bad usage or input, 1 for a runtime failure). */
export async function runProgram(program: Command, argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
    report(program, err);
  }
}

function report(program: Command, err: unknown): void {
  // Commander has already printed its own error through outputError.
  if (!(err instanceof CommanderError)) console.error(`${program.name()}: ${unreachableLine(err) ?? oneLine(err)}`);
}

/**
 * A server that could not be reached, said as a configuration error is: the settings that name it, its
 * address and what happened ("OUTBOX_DATABASE_URL (127.0.0.1:5999/outbox): the connection was refused").
 * The driver's error knows the address it tried, not the setting; the settings are matched by host and port.
 */
function unreachableLine(err: unknown): string | undefined {
  if (!isUnreachable(err)) return undefined;
  const { address, port } = (err ?? {}) as { address?: string; port?: number };
  if (!address || !port) return undefined;
  let config: Config;
  try {
    config = loadConfig();
  } catch {
    return undefined;
  }
  const servers: [setting: string, url: string][] = [
    ['OUTBOX_DATABASE_URL', config.outboxDatabaseUrl],
    ['TARGET_DATABASE_URL', config.targetDatabaseUrl],
    ['REDIS_URL', config.redisUrl],
    ...[...(config.targets?.databases.values() ?? [])].map((d): [string, string] => [d.env ?? `OUTBOX_SYNC_TARGETS database "${d.name}"`, d.url]),
  ];
  const named = servers.filter(([, url]) => sameServer(url, address, port));
  if (named.length === 0) return undefined;
  return `${[...new Set(named.map(([setting]) => setting))].join(', ')} (${describeAddress(named[0]![1])}): ${plainReason(err)}`;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

function sameServer(url: string, address: string, port: number): boolean {
  try {
    const parsed = new URL(url);
    const defaultPort = parsed.protocol.startsWith('redis') ? 6379 : parsed.protocol.startsWith('mysql') ? 3306 : 5432;
    const host = parsed.hostname;
    return Number(parsed.port || defaultPort) === port && (host === address || (LOOPBACK.has(host) && LOOPBACK.has(address)));
  } catch {
    return false;
  }
}

function exitCodeFor(err: unknown): number {
  // Help asked for exits 0; help shown because no command was given is bad usage.
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  const usage = err instanceof UsageError || err instanceof ConfigError || err instanceof TargetsError || err instanceof InvalidMessageError || err instanceof IdempotencyConflictError;
  return usage ? 2 : 1;
}

function oneLine(err: unknown): string {
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0] || String(err);
  // A database or table that is not there yet: say how to make it.
  const code = sqlState(err);
  return code === PgErrorCode.invalidCatalogName || code === PgErrorCode.undefinedTable ? `${message} (run: outbox-sync migrate)` : message;
}

/** Opens the stores with a small pool for one command's work, and closes them however it ends. */
export async function withStores<T>(config: Config, work: (stores: Stores) => Promise<T>): Promise<T> {
  const stores = openStores(config, 2);
  try {
    return await work(stores);
  } finally {
    await stores.close();
  }
}

/** The targets alone (no outbox, no Redis), for the commands that only look at the user's databases. */
export async function withTargets<T>(config: Config, work: (targets: Targets) => Promise<T>): Promise<T> {
  // The pool of synced_records connects only if used.
  const syncedRecords = new pg.Pool(pgSettings(config.targetDatabaseUrl, { max: 1 }));
  const targets = new Targets(syncedRecords, config.targets, 1);
  try {
    return await work(targets);
  } finally {
    await targets.close();
    await syncedRecords.end();
  }
}

export function parseId(text: string): number {
  if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`"${text}" is not a message id (a positive integer up to ${Number.MAX_SAFE_INTEGER})`);
  }
  return Number(text);
}

/** A duration such as 7d, 12h, 30m, 45s or 500ms, in milliseconds; `option` names the flag it came from. */
export function parseDuration(text: string, option: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match) throw new UsageError(`${option}: "${text}" is not a duration such as 7d, 12h, 30m or 45s`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
