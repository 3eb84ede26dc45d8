/**
 * The `outbox-sync` command: one module per command under commands/, each adding itself to the program;
 * command.ts holds what they share. Exit codes: 0 success, 2 bad usage or invalid input (one line on
 * stderr), 1 a runtime failure, 3 a target that `verify` finds does not match.
 */
import type { Command } from 'commander';
import { createProgram, runProgram } from './command';
import { registerMigrate } from './commands/migrate';
import { registerDev } from './commands/dev';
import { registerWorker } from './commands/worker';
import { registerDispatcher } from './commands/dispatcher';
import { registerIngest } from './commands/ingest';
import { registerUi } from './commands/ui';
import { registerCodecServer } from './commands/codec-server';
import { registerEnqueue } from './commands/enqueue';
import { registerStatus } from './commands/status';
import { registerInspect } from './commands/inspect';
import { registerRetry } from './commands/retry';
import { registerPrune } from './commands/prune';
import { registerDrain } from './commands/drain';
import { registerTargets } from './commands/targets';
import { registerVerify } from './commands/verify';

/** The commands in the order help lists them: setting up, the processes, then the operator's tools. */
const COMMANDS = [
  registerMigrate,
  registerDev,
  registerWorker,
  registerDispatcher,
  registerIngest,
  registerUi,
  registerCodecServer,
  registerEnqueue,
  registerStatus,
  registerInspect,
  registerRetry,
  registerPrune,
  registerDrain,
  registerVerify,
  registerTargets,
];

export function buildProgram(): Command {
  const program = createProgram('outbox-sync', 'Moves business data from a PostgreSQL outbox into a second database through Temporal workflows.');
  for (const register of COMMANDS) register(program);
  return program;
}

/** Runs the command line; sets process.exitCode (2 for bad usage or input, 1 for a runtime failure). */
export async function main(argv: string[]): Promise<void> {
  await runProgram(buildProgram(), argv);
}

if (require.main === module) void main(process.argv);
