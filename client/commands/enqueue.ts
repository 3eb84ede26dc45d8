/** `outbox-sync enqueue`: stores a message given as flags, or the messages of an NDJSON file (all or none), and prints their ids. */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { loadConfig, type Config } from '../../config/config';
import { InvalidMessageError, decodeUtf8, validateMessage, type ValidMessage } from '../../stores/outbox/validate';
import { insertMessages } from '../../stores/outbox/enqueue';
import { parseMessageJson } from '../../stores/outbox/message-json';
import { UsageError, withStores } from '../command';

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

export function registerEnqueue(program: Command): void {
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
    .action(async (opts: EnqueueOptions) => enqueue(loadConfig(), opts));
}

async function enqueue(config: Config, opts: EnqueueOptions): Promise<void> {
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
      data = parseMessageJson(opts.data);
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
      parsed = parseMessageJson(line);
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

/** An option's property name as its flag spells it: idempotencyKey → idempotency-key. */
function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
