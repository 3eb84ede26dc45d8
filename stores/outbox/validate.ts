/**
 * What a valid business message is, checked at every edge (library, CLI, HTTP) before anything is stored,
 * and again by the activities for rows that producers inserted with plain SQL.
 */
import { z } from 'zod';
import { messageJsonText } from './message-json';

export const MAX_ENTITY_LENGTH = 200;
export const MAX_KEY_LENGTH = 1000;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;
export const MAX_SOURCE_LENGTH = 200;
export const MAX_DATA_DEPTH = 32;
export const MAX_VERSION = 9223372036854775807n; // PostgreSQL bigint
export const DEFAULT_MAX_DATA_BYTES = 256 * 1024;
/** The most messages one batch may hold. */
export const MAX_BATCH = 1000;

export type Op = 'upsert' | 'delete';

/** A message as a producer hands it over. */
export interface MessageInput {
  entity: string;
  key: string;
  op?: Op;
  /** A non-negative integer (a decimal string or a BigInt for values past 2^53); defaults to the message id. */
  version?: number | bigint | string;
  data?: Record<string, unknown> | null;
  idempotencyKey?: string;
  source?: string;
}

/** A message that passed validation, ready to store. `version` is a decimal string or null (use the id). */
export interface ValidMessage {
  entity: string;
  key: string;
  op: Op;
  version: string | null;
  data: Record<string, unknown> | null;
  idempotencyKey: string | null;
  source: string | null;
}

/** The one-line reason a message was refused; `field` names what is wrong. */
export class InvalidMessageError extends Error {
  override name = 'InvalidMessageError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(field ? `${field}: ${reason}` : reason);
  }
}

const CONTROL_CHARACTER = /\p{Cc}/u;

const text = (max: number) =>
  z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .min(1, { error: 'must not be empty' })
    .max(max, { error: `must be at most ${max} characters` })
    .refine((s) => s.isWellFormed(), { error: 'must be valid Unicode (no lone surrogates)' })
    .refine((s) => !CONTROL_CHARACTER.test(s), { error: 'must not contain control characters' });

const version = z.union([z.number(), z.bigint(), z.string()], { error: 'must be a non-negative integer' }).transform((value, ctx) => {
  const digits = typeof value === 'number' ? (Number.isSafeInteger(value) ? String(value) : '') : String(value);
  if (!/^(0|[1-9][0-9]{0,18})$/.test(digits) || BigInt(digits) > MAX_VERSION) {
    ctx.addIssue({ code: 'custom', message: `must be an integer from 0 to ${MAX_VERSION}` });
    return z.NEVER;
  }
  return digits;
});

const messageSchema = z.strictObject(
  {
    entity: text(MAX_ENTITY_LENGTH),
    key: text(MAX_KEY_LENGTH),
    op: z.enum(['upsert', 'delete'], { error: 'must be "upsert" or "delete"' }).optional(),
    version: version.optional(),
    data: z.unknown().optional(),
    idempotencyKey: text(MAX_IDEMPOTENCY_KEY_LENGTH).optional(),
    source: text(MAX_SOURCE_LENGTH).optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a field of a message' : 'must be a JSON object') },
);

export interface ValidateOptions {
  maxDataBytes?: number;
}

/** Validates one message; throws InvalidMessageError naming the first field that is wrong. */
export function validateMessage(input: unknown, options: ValidateOptions = {}, path = ''): ValidMessage {
  const parsed = messageSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // An unknown field is named by the field itself.
    const at = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    throw new InvalidMessageError(joinPath(path, at), issue.message);
  }
  const m = parsed.data;
  const op: Op = m.op ?? 'upsert';
  const data = m.data ?? null;
  checkData(op, data, options.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES, joinPath(path, ['data']));
  return {
    entity: m.entity,
    key: m.key,
    op,
    version: m.version ?? null,
    data: data as Record<string, unknown> | null,
    idempotencyKey: m.idempotencyKey ?? null,
    source: m.source ?? null,
  };
}

/** Validates a batch: a non-empty array of messages, all valid, or an error naming the first bad one. */
export function validateBatch(input: unknown, options: ValidateOptions & { maxBatch?: number } = {}): ValidMessage[] {
  const maxBatch = options.maxBatch ?? MAX_BATCH;
  if (!Array.isArray(input)) throw new InvalidMessageError('', 'a batch must be a JSON array of messages');
  if (input.length === 0) throw new InvalidMessageError('', 'a batch must hold at least one message');
  if (input.length > maxBatch) throw new InvalidMessageError('', `a batch holds at most ${maxBatch} messages (got ${input.length})`);
  return input.map((message, i) => validateMessage(message, options, `[${i}]`));
}

/**
 * Checks the data of a message: a JSON object for upserts, absent for deletes, JSON-representable all the
 * way down, within the depth and size limits, and storable by PostgreSQL (which refuses \u0000 in jsonb).
 */
export function checkData(op: Op, data: unknown, maxDataBytes: number, field = 'data'): void {
  if (op === 'delete') {
    if (data !== null && data !== undefined) throw new InvalidMessageError(field, 'must be omitted for a delete');
    return;
  }
  if (data === null || data === undefined) throw new InvalidMessageError(field, 'is required for an upsert');
  if (!isPlainObject(data)) throw new InvalidMessageError(field, 'must be a JSON object');
  checkJsonValue(data, field, 1);
  const bytes = Buffer.byteLength(messageJsonText(data));
  if (bytes > maxDataBytes) throw new InvalidMessageError(field, `is ${bytes} bytes, more than the limit of ${maxDataBytes}`);
}

function checkJsonValue(value: unknown, field: string, depth: number): void {
  if (depth > MAX_DATA_DEPTH) throw new InvalidMessageError(field, `nests deeper than ${MAX_DATA_DEPTH} levels`);
  // A BigInt is an integer past 2^53 that the JSON parser kept exact (message-json.ts).
  if (value === null || typeof value === 'boolean' || typeof value === 'bigint') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidMessageError(field, 'must hold only finite numbers');
    return;
  }
  if (typeof value === 'string') {
    checkString(value, field);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) checkJsonValue(item, field, depth + 1);
    return;
  }
  if (isPlainObject(value)) {
    for (const [name, item] of Object.entries(value)) {
      checkString(name, field);
      checkJsonValue(item, field, depth + 1);
    }
    return;
  }
  throw new InvalidMessageError(field, `must hold only JSON values (found ${typeof value})`);
}

function checkString(s: string, field: string): void {
  if (s.includes('\u0000')) throw new InvalidMessageError(field, 'must not contain the NUL character');
  if (!s.isWellFormed()) throw new InvalidMessageError(field, 'must be valid Unicode (no lone surrogates)');
}

/**
 * Decodes bytes that should be UTF-8 text (a line of an NDJSON file, an HTTP body), refusing invalid
 * sequences instead of silently replacing them with U+FFFD, which would store something the producer
 * never sent.
 */
export function decodeUtf8(bytes: Uint8Array, field: string): string {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    throw new InvalidMessageError(field, 'is not valid UTF-8');
  }
}

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out;
}
