/**
 * The `outbox-sync` command. Exit codes: 0 success, 2 bad usage or invalid input (one line on stderr),
 * 1 a runtime failure.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/config';
import { openStores } from '../stores/stores';
import { InvalidMessageError, decodeUtf8, validateMessage, type ValidMessage } from '../stores/outbox/validate';
import { IdempotencyConflictError, insertMessages } from '../stores/outbox/enqueue';
import { publicMessage, readMessage, readStatus, pruneCompleted } from '../stores/outbox/messages';
import { retryMessages } from '../stores/outbox/state-machine';
import { workflowUrl } from '../temporal/ui-links';
import { progressBar } from './progress';

/** Wrong arguments or input: exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function buildProgram(): Command {
  const program = new Command('outbox-sync')
    .description('Moves business data from a PostgreSQL outbox into a second database through Temporal workflows.')
    .showSuggestionAfterError()
    .exitOverride()
    // Commander's own usage errors in the same one-line form as ours.
    .configureOutput({ outputError: (text, write) => write(`outbox-sync: ${text.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim()}\n`) });

  program
    .command('migrate')
    .description('create or upgrade both database schemas and register the search attributes in Temporal')
    .option('--skip-temporal', 'leave the Temporal namespace alone')
    .action(async (opts: { skipTemporal?: boolean }) => {
      const { runMigrate } = await import('./commands/migrate');
      await runMigrate(loadConfig(), { temporal: !opts.skipTemporal, log: (line) => console.log(line) });
    });

  program
    .command('dev')
    .description('all in one: Temporal dev server (SQLite file, Web UI), migrate, worker, dispatcher')
    .option('--demo', 'enqueue a demo batch, wait until it is completed and show it')
    .option('--data-dir <dir>', 'where the Temporal SQLite file lives', '.data')
    .action(async (opts: { demo?: boolean; dataDir: string }) => {
      const config = loadConfig();
      // The Temporal worker's modules load only for the commands that run one: the others start fast.
      const { runDev } = await import('./commands/dev');
      await runDev(config, { demo: Boolean(opts.demo), dataDir: opts.dataDir });
    });

  program
    .command('worker')
    .description('run workflows and activities (many may run at once)')
    .action(async () => {
      const config = loadConfig();
      const { runWorker } = await import('../worker/run-worker');
      await runWorker(config);
    });

  program
    .command('dispatcher')
    .description('claim pending messages, start their workflows, redrive failed ones, reconcile stuck ones')
    .action(async () => {
      const config = loadConfig();
      const { runDispatcher } = await import('../dispatcher/run-dispatcher');
      await runDispatcher(config);
    });

  program
    .command('ingest')
    .description('the HTTP server for devices: POST /v1/messages, GET /v1/messages/:id, /healthz, /metrics')
    .action(async () => {
      const config = loadConfig();
      const { runIngest } = await import('../servers/ingest/run-ingest');
      await runIngest(config);
    });

  program
    .command('ui')
    .description('the outbox page for operators: status, activity, failed and dead messages, retry (OUTBOX_SYNC_UI_TOKENS)')
    .action(async () => {
      const config = loadConfig();
      const { runUi } = await import('../servers/ui/run-ui');
      await runUi(config);
    });

  program
    .command('codec-server')
    .description('decrypts payloads for the Temporal UI and CLI (POST /codec/decode, /codec/encode), for operators with a token')
    .action(async () => {
      const config = loadConfig();
      const { runCodecServer } = await import('../servers/codec-server');
      await runCodecServer(config);
    });

  program
    .command('enqueue')
    .description('store a message (or, with --ndjson, one message per line, all or none) and print the ids')
    .option('--entity <entity>', 'what the message is about, e.g. order')
    .option('--key <key>', 'which one, e.g. 42')
    .option('--version <version>', 'monotonic per (entity, key); defaults to the message id')
    .addOption(new Option('--op <op>', 'upsert or delete').choices(['upsert', 'delete']))
    .option('--data <json>', 'the data, a JSON object (required for upsert)')
    .option('--idempotency-key <key>', 'a repeat with the same body returns the first id')
    .option('--source <source>', 'who sent it')
    .option('--ndjson <file>', 'read messages from a file of JSON lines (- for stdin)')
    .action(async (opts: EnqueueOptions) => enqueueCommand(loadConfig(), opts));

  program
    .command('status')
    .description('counts per status and the age of the oldest pending message')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      await withStores(config, async ({ outbox }) => {
        const status = await readStatus(outbox);
        if (opts.json) return console.log(JSON.stringify(status));
        for (const [name, n] of Object.entries(status.counts)) console.log(`${name.padEnd(11)} ${n}`);
        console.log(`oldest pending: ${status.oldestPendingSeconds} s`);
      });
    });

  program
    .command('inspect')
    .description('a message, its attempts and last error, its workflow id and a Temporal UI link')
    .argument('<id>', 'message id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const config = loadConfig();
      const messageId = parseId(id);
      await withStores(config, async ({ outbox }) => {
        const message = await readMessage(outbox, messageId);
        if (!message) throw new UsageError(`message ${messageId} does not exist`);
        const temporalUi = message.workflowId ? workflowUrl(config, message.workflowId) : null;
        if (opts.json) return console.log(JSON.stringify({ ...publicMessage(message), temporalUi }));
        const rows: [string, unknown][] = [
          ['id', message.id],
          ['status', message.status],
          ['entity', message.entity],
          ['key', message.key],
          ['op', message.op],
          ['version', message.version],
          ['source', message.source ?? '-'],
          ['attempts', message.executions],
          ['last error', message.lastError ?? '-'],
          ['workflow id', message.workflowId ?? '- (not started yet)'],
          ['temporal ui', temporalUi ?? '-'],
          ['created', message.createdAt.toISOString()],
          ['updated', message.updatedAt.toISOString()],
        ];
        for (const [name, value] of rows) console.log(`${name.padEnd(12)} ${value}`);
      });
    });

  program
    .command('retry')
    .description('send failed or dead messages back through the pipeline')
    .argument('[ids...]', 'message ids')
    .option('--dead', 'all dead messages')
    .option('--failed', 'all failed messages')
    .option('--json', 'print JSON: {"retried": n, "ids": [...]}')
    .action(async (ids: string[], opts: { dead?: boolean; failed?: boolean; json?: boolean }) => {
      const chosen = [ids.length > 0, Boolean(opts.dead), Boolean(opts.failed)].filter(Boolean).length;
      if (chosen !== 1) throw new UsageError('retry takes message ids, --dead or --failed (exactly one of them)');
      const select = opts.dead ? { status: 'dead' as const } : opts.failed ? { status: 'failed' as const } : { ids: ids.map(parseId) };
      await withStores(loadConfig(), async ({ outbox }) => {
        const bar = progressBar('retrying');
        const moved = await retryMessages(outbox, select, { actor: 'cli', onProgress: (done, total) => bar.update(done, total) }).finally(() =>
          bar.stop(),
        );
        if (opts.json) return console.log(JSON.stringify({ retried: moved.length, ids: moved }));
        console.log(`${moved.length} message(s) sent back to pending${moved.length ? `: ${moved.join(' ')}` : ''}`);
      });
    });

  program
    .command('prune')
    .description('delete completed messages older than a duration')
    .requiredOption('--older-than <duration>', 'e.g. 7d, 12h, 30m, 45s')
    .option('--json', 'print JSON: {"deleted": n}')
    .action(async (opts: { olderThan: string; json?: boolean }) => {
      const ms = parseDuration(opts.olderThan);
      await withStores(loadConfig(), async ({ outbox }) => {
        const bar = progressBar('pruning');
        const deleted = await pruneCompleted(outbox, ms, (done, total) => bar.update(done, total)).finally(() => bar.stop());
        if (opts.json) return console.log(JSON.stringify({ deleted }));
        console.log(`${deleted} completed message(s) deleted`);
      });
    });

  program
    .command('drain')
    .description('wait until no message is pending, processing or failed (waiting for a redrive); exit 1 on timeout')
    .option('--timeout <duration>', 'give up after this long, e.g. 10m', '1h')
    .option('--json', 'print the final counts as JSON, like status --json')
    .action(async (opts: { timeout: string; json?: boolean }) => {
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      await withStores(loadConfig(), async ({ outbox }) => {
        const bar = progressBar('draining');
        const deadline = Date.now() + timeoutMs;
        let status = await readStatus(outbox);
        const open = () => status.counts.pending + status.counts.processing + status.counts.failed;
        let total = open();
        try {
          while (open() > 0 && Date.now() < deadline) {
            total = Math.max(total, open());
            bar.update(total - open(), total);
            await new Promise((r) => setTimeout(r, 500));
            status = await readStatus(outbox);
          }
          bar.update(total - open(), total);
        } finally {
          bar.stop();
        }
        if (opts.json) console.log(JSON.stringify(status));
        else console.log(`${open()} message(s) still open; ${status.counts.completed} completed, ${status.counts.dead} dead`);
        if (open() > 0) throw new Error(`not drained after ${opts.timeout}: ${open()} message(s) still pending, processing or failed`);
      });
    });

  return program;
}

interface EnqueueOptions {
  entity?: string;
  key?: string;
  version?: string;
  op?: 'upsert' | 'delete';
  data?: string;
  idempotencyKey?: string;
  source?: string;
  ndjson?: string;
}

async function enqueueCommand(config: Config, opts: EnqueueOptions): Promise<void> {
  if (opts.ndjson !== undefined) {
    const mixed = (['entity', 'key', 'version', 'op', 'data', 'idempotencyKey', 'source'] as const).filter((f) => opts[f] !== undefined);
    if (mixed.length > 0) throw new UsageError(`--ndjson takes every field from the file; drop --${kebab(mixed[0]!)}`);
  }
  const messages = opts.ndjson ? readNdjson(opts.ndjson, config) : [messageFromFlags(opts, config)];
  await withStores(config, async ({ outbox }) => {
    const ids = await insertMessages(outbox, messages);
    console.log(ids.join('\n'));
  });
}

function messageFromFlags(opts: EnqueueOptions, config: Config): ValidMessage {
  if (opts.entity === undefined) throw new UsageError('--entity is required (or use --ndjson FILE)');
  if (opts.key === undefined) throw new UsageError('--key is required (or use --ndjson FILE)');
  let data: unknown;
  if (opts.data !== undefined) {
    try {
      data = JSON.parse(opts.data);
    } catch {
      throw new InvalidMessageError('--data', 'is not valid JSON');
    }
  }
  const input = {
    entity: opts.entity,
    key: opts.key,
    ...(opts.op === undefined ? {} : { op: opts.op }),
    ...(opts.version === undefined ? {} : { version: opts.version }),
    ...(data === undefined ? {} : { data }),
    ...(opts.idempotencyKey === undefined ? {} : { idempotencyKey: opts.idempotencyKey }),
    ...(opts.source === undefined ? {} : { source: opts.source }),
  };
  return validateMessage(input, { maxDataBytes: config.maxDataBytes });
}

function readNdjson(file: string, config: Config): ValidMessage[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    throw new UsageError(`--ndjson: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const messages: ValidMessage[] = [];
  splitLines(bytes).forEach((lineBytes, i) => {
    const line = decodeUtf8(lineBytes, `line ${i + 1}`);
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new InvalidMessageError(`line ${i + 1}`, 'is not valid JSON');
    }
    messages.push(validateMessage(parsed, { maxDataBytes: config.maxDataBytes }, `line ${i + 1}`));
  });
  if (messages.length === 0) throw new UsageError(`--ndjson: ${file} holds no messages`);
  return messages;
}

/** The lines of a file as bytes, so each is decoded (and an invalid one named) on its own. */
function splitLines(bytes: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let end = bytes.indexOf(0x0a); end !== -1; end = bytes.indexOf(0x0a, start)) {
    lines.push(bytes.subarray(start, end));
    start = end + 1;
  }
  lines.push(bytes.subarray(start));
  return lines;
}

async function withStores<T>(config: Config, work: (stores: ReturnType<typeof openStores>) => Promise<T>): Promise<T> {
  const stores = openStores(config, 2);
  try {
    return await work(stores);
  } finally {
    await stores.close();
  }
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function parseId(text: string): number {
  if (!/^[1-9][0-9]*$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`"${text}" is not a message id (a positive integer up to ${Number.MAX_SAFE_INTEGER})`);
  }
  return Number(text);
}

export function parseDuration(text: string, option = '--older-than'): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match) throw new UsageError(`${option}: "${text}" is not a duration such as 7d, 12h, 30m or 45s`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

/** Runs the command line; sets process.exitCode (2 for bad usage or input, 1 for a runtime failure). */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.exitCode = exitCodeFor(err);
    if (!(err instanceof CommanderError)) console.error(`outbox-sync: ${oneLine(err)}`);
  }
}

function exitCodeFor(err: unknown): number {
  // Help asked for exits 0; help shown because no command was given is bad usage.
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  const usage = err instanceof UsageError || err instanceof ConfigError || err instanceof InvalidMessageError || err instanceof IdempotencyConflictError;
  return usage ? 2 : 1;
}

function oneLine(err: unknown): string {
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0] || String(err);
  // A database or table that is not there yet: say how to make it.
  const code = (err as { code?: string } | null)?.code;
  return code === '3D000' || code === '42P01' ? `${message} (run: outbox-sync migrate)` : message;
}

if (require.main === module) void main(process.argv);
