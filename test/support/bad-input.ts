/**
 * The catalogue of bad (and borderline) input: the one list that test/bad-input.test.ts runs through every
 * channel and that docs/bad-input.md is written from (`npm run docs:bad-input`), so the two cannot drift.
 *
 * A case is a message as a JavaScript value (for the library) and, where it differs, as the text that
 * travels over the text channels (a line of `enqueue --ndjson`, the body of `POST /v1/messages`).
 * Command-line flags are derived from the message unless the case names them.
 */
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export type Channel = 'library' | 'batch' | 'flags' | 'ndjson' | 'http';

export const CHANNELS: readonly Channel[] = ['library', 'batch', 'flags', 'ndjson', 'http'];

export const CHANNEL_NAMES: Record<Channel, string> = {
  library: '`enqueue()`',
  batch: '`enqueueBatch()`',
  flags: 'CLI flags',
  ndjson: 'CLI `--ndjson`',
  http: '`POST /v1/messages`',
};

export type Expectation =
  /** Refused before anything is stored; the error is `<where>: <reason>` (where = the field, after the channel's position). */
  | { refused: { field: string; reason: string } }
  /** Stored as given, exactly once (`stored: 0` when it repeats a message stored before). */
  | { accepted: { stored: 0 | 1 } };

export interface BadInputCase {
  name: string;
  /** The message as a producer's code hands it to the library. Absent when the case only exists as text. */
  message?: unknown;
  /** What `enqueueBatch` gets instead of `[message]`. */
  batch?: unknown;
  /** The text of the message over the text channels; defaults to JSON.stringify(message). */
  body?: string | Buffer;
  /** The command-line flags; derived from the message when absent. */
  flags?: string[];
  /** A message stored before the attempt (for idempotency keys). */
  before?: Record<string, unknown>;
  expect: Expectation;
  /** Channels that cannot carry the case, and why. */
  notOn?: Partial<Record<Channel, string>>;
  /** A channel's full error line where it differs from `<where>: <reason>`. */
  errors?: Partial<Record<Channel, string | RegExp>>;
  /** The HTTP status of a refusal, where it is not 400. */
  httpStatus?: number;
}

const ok = { entity: 'order', key: '42' };
const BIG_VERSION = '9223372036854775807';
const ARGV_NUL = 'a command-line argument cannot hold a NUL byte';
const JSON_ONLY_VALUES = 'JSON text cannot express this value';
const TEXT_ONLY = 'the library takes values, not text';
const FLAGS_ARE_TEXT = 'every flag is text, so the type cannot be wrong';

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true };
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

function refused(field: string, reason: string): Expectation {
  return { refused: { field, reason } };
}

const VERSION_RANGE = `must be an integer from 0 to ${BIG_VERSION}`;

export const BAD_INPUT_CASES: readonly BadInputCase[] = [
  // The shape of the message
  { name: 'a JSON array instead of a message', message: [ok], expect: refused('', 'must be a JSON object'), notOn: { flags: FLAGS_ARE_TEXT, http: 'an array is a batch over HTTP (see the batch cases)' } },
  { name: 'a JSON string instead of a message', message: 'order 42', expect: refused('', 'must be a JSON object'), notOn: { flags: FLAGS_ARE_TEXT } },
  { name: 'null instead of a message', message: null, expect: refused('', 'must be a JSON object'), notOn: { flags: FLAGS_ARE_TEXT } },
  {
    name: 'text that is not JSON',
    body: 'entity=order&key=42',
    expect: refused('', 'is not valid JSON'),
    notOn: { library: TEXT_ONLY, batch: TEXT_ONLY, flags: 'see the `--data` case' },
    errors: { http: 'the body is not valid JSON' },
  },
  {
    name: 'truncated JSON',
    body: '{"entity": "order", "key": "42", "data": {"total": 1',
    expect: refused('', 'is not valid JSON'),
    notOn: { library: TEXT_ONLY, batch: TEXT_ONLY, flags: 'see the `--data` case' },
    errors: { http: 'the body is not valid JSON' },
  },
  {
    name: '`--data` that is not JSON',
    flags: ['--entity=order', '--key=42', '--data={total: 1}'],
    expect: refused('--data', 'is not valid JSON'),
    notOn: { library: TEXT_ONLY, batch: TEXT_ONLY, ndjson: 'see the non-JSON cases', http: 'see the non-JSON cases' },
  },
  {
    name: 'bytes that are not valid UTF-8',
    body: Buffer.concat([Buffer.from('{"entity": "order", "key": "4'), Buffer.from([0xff, 0xfe]), Buffer.from('2", "data": {}}')]),
    expect: refused('', 'is not valid UTF-8'),
    errors: { http: 'the body is not valid UTF-8' },
    notOn: { library: 'JavaScript strings hold no bytes (see the lone surrogate cases)', batch: TEXT_ONLY, flags: 'Node turns invalid bytes in arguments into U+FFFD before the program sees them (see the limits below)' },
  },
  { name: 'an unknown field', message: { ...ok, data: {}, colour: 'red' }, expect: refused('colour', 'is not a field of a message'), flags: ['--entity=order', '--key=42', '--data={}', '--colour=red'], errors: { flags: /^unknown option '--colour=red'/ } },
  { name: 'an empty batch', message: undefined, batch: [], body: '', expect: refused('', 'a batch must hold at least one message'), notOn: { library: 'one message', flags: 'one message' }, errors: { batch: 'a batch must hold at least one message', ndjson: /^--ndjson: .* holds no messages$/ } },
  {
    name: 'a batch of more than 1000 messages',
    batch: Array.from({ length: 1001 }, (_, i) => ({ entity: 'order', key: String(i), data: {} })),
    expect: refused('', 'a batch holds at most 1000 messages (got 1001)'),
    errors: { batch: 'a batch holds at most 1000 messages (got 1001)' },
    notOn: { library: 'one message', flags: 'one message', ndjson: 'a file has no such limit' },
  },
  {
    name: 'a batch whose second message is bad (the first is not stored either)',
    batch: [{ ...ok, data: {} }, { entity: 'order', data: {} }],
    body: `${JSON.stringify({ ...ok, data: {} })}\n${JSON.stringify({ entity: 'order', data: {} })}`,
    expect: refused('key', 'is required'),
    notOn: { library: 'one message', flags: 'one message' },
    errors: { batch: '[1].key: is required', ndjson: 'line 2.key: is required' },
  },

  // entity and key
  { name: 'no entity', message: { key: '42', data: {} }, expect: refused('entity', 'is required'), errors: { flags: '--entity is required (or use --ndjson FILE)' } },
  { name: 'no key', message: { entity: 'order', data: {} }, expect: refused('key', 'is required'), errors: { flags: '--key is required (or use --ndjson FILE)' } },
  { name: 'an entity that is a number', message: { entity: 42, key: '42', data: {} }, expect: refused('entity', 'must be a string'), notOn: { flags: FLAGS_ARE_TEXT } },
  { name: 'a key that is an object', message: { entity: 'order', key: { id: 42 }, data: {} }, expect: refused('key', 'must be a string'), notOn: { flags: FLAGS_ARE_TEXT } },
  { name: 'an empty entity', message: { entity: '', key: '42', data: {} }, expect: refused('entity', 'must not be empty') },
  { name: 'an entity of 201 characters', message: { entity: 'e'.repeat(201), key: '42', data: {} }, expect: refused('entity', 'must be at most 200 characters') },
  { name: 'a key of 1001 characters', message: { entity: 'order', key: 'k'.repeat(1001), data: {} }, expect: refused('key', 'must be at most 1000 characters') },
  { name: 'a newline in the entity', message: { entity: 'order\nx', key: '42', data: {} }, expect: refused('entity', 'must not contain control characters') },
  { name: 'a NUL character in the key', message: { entity: 'order', key: '4\u00002', data: {} }, expect: refused('key', 'must not contain control characters'), notOn: { flags: ARGV_NUL } },
  { name: 'an escape sequence (ESC) in the key', message: { entity: 'order', key: '\u001b[31m42', data: {} }, expect: refused('key', 'must not contain control characters') },
  {
    name: 'a lone surrogate in the key (not valid Unicode)',
    message: { entity: 'order', key: '42\ud800', data: {} },
    expect: refused('key', 'must be valid Unicode (no lone surrogates)'),
    notOn: { flags: 'arguments reach the process as UTF-8, which cannot encode it' },
  },
  {
    name: "SQL in the entity and key (`'; DROP TABLE …`)",
    message: { entity: "order'; DROP TABLE outbox_messages; --", key: "42' OR '1'='1", data: { note: "'); DELETE FROM synced_records; --" } },
    expect: { accepted: { stored: 1 } },
  },

  // op
  { name: 'an unknown op', message: { ...ok, op: 'merge', data: {} }, expect: refused('op', 'must be "upsert" or "delete"'), errors: { flags: /^option '--op <op>' argument 'merge' is invalid/ } },
  { name: 'an op in capitals', message: { ...ok, op: 'DELETE' }, expect: refused('op', 'must be "upsert" or "delete"'), errors: { flags: /^option '--op <op>' argument 'DELETE' is invalid/ } },
  { name: 'an op that is a number', message: { ...ok, op: 1, data: {} }, expect: refused('op', 'must be "upsert" or "delete"'), notOn: { flags: FLAGS_ARE_TEXT } },

  // version
  { name: 'a negative version', message: { ...ok, version: -1, data: {} }, expect: refused('version', VERSION_RANGE) },
  { name: 'a fractional version', message: { ...ok, version: 1.5, data: {} }, expect: refused('version', VERSION_RANGE) },
  { name: 'a version past the bigint range', message: { ...ok, version: '9223372036854775808', data: {} }, expect: refused('version', VERSION_RANGE) },
  {
    name: 'a version number past 2^53 that is already a double (it would lose digits)',
    message: { ...ok, version: 2 ** 53 + 2, data: {} },
    expect: refused('version', VERSION_RANGE),
    notOn: { flags: 'a flag is a decimal string, which is exact', ndjson: 'JSON text is read exactly past 2^53', http: 'JSON text is read exactly past 2^53' },
  },
  { name: 'a version with leading zeros', message: { ...ok, version: '007', data: {} }, expect: refused('version', VERSION_RANGE) },
  { name: 'a version in exponent notation', message: { ...ok, version: '1e3', data: {} }, expect: refused('version', VERSION_RANGE) },
  { name: 'a version that is a boolean', message: { ...ok, version: true, data: {} }, expect: refused('version', 'must be a non-negative integer'), notOn: { flags: FLAGS_ARE_TEXT } },
  { name: 'the largest version (2^63 - 1, as a string)', message: { entity: 'order', key: 'max-version', version: BIG_VERSION, data: {} }, expect: { accepted: { stored: 1 } } },

  // data
  { name: 'an upsert without data', message: { ...ok }, expect: refused('data', 'is required for an upsert') },
  { name: 'data that is an array', message: { ...ok, data: [1, 2] }, expect: refused('data', 'must be a JSON object') },
  { name: 'data that is a string', message: { ...ok, data: 'paid' }, expect: refused('data', 'must be a JSON object') },
  { name: 'data on a delete', message: { ...ok, op: 'delete', data: { total: 1 } }, expect: refused('data', 'must be omitted for a delete') },
  { name: 'data nested 33 levels deep', message: { ...ok, data: nested(33) }, expect: refused('data', 'nests deeper than 32 levels') },
  {
    name: 'data nested 100,000 levels deep',
    message: { ...ok, data: nested(100_000) },
    body: `{"entity": "order", "key": "42", "data": ${'{"a": '.repeat(100_000)}1${'}'.repeat(100_000)}}`,
    expect: refused('data', 'nests deeper than 32 levels'),
    notOn: { flags: 'larger than one command-line argument may be (128 KiB)' },
  },
  {
    name: 'data of 300 KiB (the limit is 256 KiB)',
    message: { ...ok, data: { blob: 'x'.repeat(300 * 1024) } },
    expect: refused('data', 'is 307211 bytes, more than the limit of 262144'),
    notOn: { flags: 'larger than one command-line argument may be (128 KiB)' },
  },
  { name: 'a NUL character in a data string (PostgreSQL jsonb refuses it)', message: { ...ok, data: { note: 'a\u0000b' } }, expect: refused('data', 'must not contain the NUL character') },
  { name: 'a NUL character in a data property name', message: { ...ok, data: { 'no\u0000te': 1 } }, expect: refused('data', 'must not contain the NUL character') },
  { name: 'a lone surrogate in a data string', message: { ...ok, data: { note: '\udc00' } }, expect: refused('data', 'must be valid Unicode (no lone surrogates)') },
  {
    name: 'a number too large for a double (1e400)',
    message: { ...ok, data: { total: Infinity } },
    body: '{"entity": "order", "key": "42", "data": {"total": 1e400}}',
    flags: ['--entity=order', '--key=42', '--data={"total": 1e400}'],
    expect: refused('data', 'must hold only finite numbers'),
  },
  { name: 'NaN in data', message: { ...ok, data: { total: NaN } }, expect: refused('data', 'must hold only finite numbers'), notOn: { flags: JSON_ONLY_VALUES, ndjson: JSON_ONLY_VALUES, http: JSON_ONLY_VALUES } },
  { name: 'a function in data', message: { ...ok, data: { f: () => 1 } }, expect: refused('data', 'must hold only JSON values (found function)'), notOn: { flags: JSON_ONLY_VALUES, ndjson: JSON_ONLY_VALUES, http: JSON_ONLY_VALUES } },
  { name: 'undefined in data (JSON.stringify would drop it)', message: { ...ok, data: { total: undefined } }, expect: refused('data', 'must hold only JSON values (found undefined)'), notOn: { flags: JSON_ONLY_VALUES, ndjson: JSON_ONLY_VALUES, http: JSON_ONLY_VALUES } },
  { name: 'a Date object as data', message: { ...ok, data: new Date(0) }, expect: refused('data', 'must be a JSON object'), notOn: { flags: JSON_ONLY_VALUES, ndjson: JSON_ONLY_VALUES, http: JSON_ONLY_VALUES } },
  {
    name: 'a cycle in data',
    message: (() => {
      const data: Record<string, unknown> = {};
      data.self = data;
      return { ...ok, data };
    })(),
    expect: refused('data', 'nests deeper than 32 levels'),
    notOn: { flags: JSON_ONLY_VALUES, ndjson: JSON_ONLY_VALUES, http: JSON_ONLY_VALUES },
  },

  // idempotency key and source
  { name: 'an empty idempotency key', message: { ...ok, data: {}, idempotencyKey: '' }, expect: refused('idempotencyKey', 'must not be empty') },
  {
    name: 'an idempotency key reused with a different body',
    before: { entity: 'order', key: '42', data: { total: 1 }, idempotencyKey: 'pay-42' },
    message: { entity: 'order', key: '42', data: { total: 2 }, idempotencyKey: 'pay-42' },
    expect: refused('idempotencyKey', '"pay-42" was already used for message <id> with a different body'),
    httpStatus: 409,
    // The conflict is found by the database after the batch passed validation: no position.
    errors: {
      batch: /^idempotencyKey: "pay-42" was already used for message \d+ with a different body$/,
      ndjson: /^idempotencyKey: "pay-42" was already used for message \d+ with a different body$/,
    },
  },
  {
    name: 'an idempotency key repeated with the same body (answers the first id)',
    before: { entity: 'order', key: '43', data: { total: 1 }, idempotencyKey: 'pay-43' },
    message: { entity: 'order', key: '43', data: { total: 1 }, idempotencyKey: 'pay-43' },
    expect: { accepted: { stored: 0 } },
  },
  { name: 'a source that is a number', message: { ...ok, data: {}, source: 7 }, expect: refused('source', 'must be a string'), notOn: { flags: FLAGS_ARE_TEXT } },
  { name: 'a tab in the source', message: { ...ok, data: {}, source: 'device\t1' }, expect: refused('source', 'must not contain control characters') },
];

/** The flags that carry a message on the command line, or null if a field cannot be a flag. */
export function flagsFor(c: BadInputCase): string[] | null {
  if (c.flags) return c.flags;
  const m = c.message;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return null;
  const names: Record<string, string> = { entity: 'entity', key: 'key', version: 'version', op: 'op', data: 'data', idempotencyKey: 'idempotency-key', source: 'source' };
  const flags: string[] = [];
  for (const [field, value] of Object.entries(m)) {
    const flag = names[field];
    if (!flag) return null;
    flags.push(`--${flag}=${field === 'data' ? JSON.stringify(value) : String(value)}`);
  }
  return flags;
}

/** The text of the case over a text channel. */
export function bodyFor(c: BadInputCase): string | Buffer {
  if (c.body !== undefined) return c.body;
  return JSON.stringify(c.message);
}

/** The body of `POST /v1/messages`: a batch is a JSON array; one message is the text of the other channels. */
export function httpBodyFor(c: BadInputCase): string | Buffer {
  return c.batch !== undefined ? JSON.stringify(c.batch) : bodyFor(c);
}

/** Where an error names a field, by channel: a batch and a file say which message first. */
const POSITION: Record<Channel, string> = { library: '', batch: '[0]', flags: '', ndjson: 'line 1', http: '' };

/** The error line a channel must give for a refused case. */
export function expectedError(c: BadInputCase, channel: Channel): string | RegExp {
  const given = c.errors?.[channel];
  if (given !== undefined) return given;
  // HTTP answers in the library's words: a batch names the message's position as enqueueBatch does.
  if (channel === 'http') return expectedError(c, c.batch !== undefined ? 'batch' : 'library');
  if (!('refused' in c.expect)) throw new Error(`${c.name}: accepted, no error`);
  const { field, reason } = c.expect.refused;
  const at = POSITION[channel] && field ? `${POSITION[channel]}.${field}` : POSITION[channel] || field;
  const line = at ? `${at}: ${reason}` : reason;
  if (!line.includes('<id>')) return line;
  const [head, tail] = line.split('<id>') as [string, string];
  return new RegExp(`^${escapeRegExp(head)}\\d+${escapeRegExp(tail)}$`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** docs/bad-input.md, written from the cases. */
export function renderDoc(): string {
  const refusedCount = BAD_INPUT_CASES.filter((c) => 'refused' in c.expect).length;
  const notes = new Map<string, number>();
  const note = (text: string) => {
    if (!notes.has(text)) notes.set(text, notes.size + 1);
    return notes.get(text)!;
  };
  const rows = BAD_INPUT_CASES.map((c, i) => {
    const outcome =
      'refused' in c.expect
        ? `refused: \`${c.expect.refused.field ? `${c.expect.refused.field}: ` : ''}${c.expect.refused.reason}\``
        : c.expect.accepted.stored === 1
          ? 'accepted, stored as given'
          : 'accepted, answers the first id, stores nothing new';
    const cells = CHANNELS.map((ch) => (c.notOn?.[ch] ? `n/a [${note(c.notOn[ch]!)}]` : '✓'));
    return `| ${i + 1} | ${c.name.replace(/\|/g, '\\|')} | ${outcome.replace(/\|/g, '\\|')} | ${cells.join(' | ')} |`;
  });
  return [
    '# Bad input: the cases and what happens',
    '',
    '<!-- Written by `npm run docs:bad-input` from test/support/bad-input.ts; test/bad-input.test.ts checks it is up to date. -->',
    '',
    `Every case below is run by \`test/bad-input.test.ts\` through each channel marked ✓, against a real outbox:`,
    `a refused case must give exactly the error shown (a channel adds the message's position: \`[0].\` in a batch,`,
    '`line 1.` in a file), the command line must exit 2 with that one line on stderr and nothing on stdout, and',
    'the outbox must hold no new row afterwards. An accepted case must store the message exactly as given.',
    `${BAD_INPUT_CASES.length} cases, ${refusedCount} of them refused.`,
    '',
    'Over HTTP a refusal is `400` (`409` for an idempotency conflict) with the body `{"error": "<the line>",',
    '"field": "<field>"}`; one message travels as the JSON text of a `--ndjson` line, a batch as a JSON array;',
    'an error about the whole body says so (`the body is not valid JSON`, `the body is not valid UTF-8`).',
    '',
    `| # | case | outcome | ${CHANNELS.map((ch) => CHANNEL_NAMES[ch]).join(' | ')} |`,
    `|---|---|---|${CHANNELS.map(() => '---').join('|')}|`,
    ...rows,
    '',
    'Not applicable:',
    '',
    ...[...notes].map(([text, n]) => `${n}. ${text}`),
    '',
    'Known limits, not refused:',
    '',
    '- Invalid UTF-8 in a command-line argument reaches the program already replaced by U+FFFD; bytes from an',
    '  untrusted source belong in a file given to `--ndjson`, which refuses them.',
    '- An integer past 2^53 in JSON text is read exactly (as a BigInt); a fraction keeps a double\'s ~16',
    '  significant digits: send exact decimals as strings.',
    '- A repeated property name in JSON text keeps its last value, as `JSON.parse` does, unless the text',
    '  holds a run of 16 or more digits: then two different values for one name are refused as ambiguous.',
    '',
    'Input that passes this check but that PostgreSQL or the target refuses later (rows inserted with plain',
    'SQL, which skip the library) fails that message alone, permanently, with the reason in `last_error`:',
    'see `test/faults.test.ts`.',
    '',
  ].join('\n');
}

export const DOC_PATH = resolve(__dirname, '..', '..', '..', 'docs', 'bad-input.md');

if (require.main === module) {
  writeFileSync(DOC_PATH, renderDoc());
  console.log(`wrote ${join('docs', 'bad-input.md')} (${BAD_INPUT_CASES.length} cases)`);
}
