/**
 * Settings, parsed and validated in one place. They come from the environment, optionally layered over a
 * JSON config file named by OUTBOX_SYNC_CONFIG (the environment wins). A wrong value stops the process
 * with one line that names the setting and what is wrong with it.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { z } from 'zod';
import { LOG_LEVELS } from '../observability/logging';
import { readTargetsMapping, TargetsError, type TargetsMapping } from '../stores/target/mapping';

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

/** An integer given as a number (config file) or as decimal digits (environment); nothing looser. */
const int = (min: number, max: number) =>
  z
    .union([z.number(), z.string().regex(/^-?[0-9]+$/, 'must be an integer').transform(Number)], { error: 'must be an integer' })
    .pipe(z.number().int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

/** A path to a readable file, or empty for none. */
const file = z.string().refine(
  (path) => {
    if (path === '') return true;
    try {
      accessSync(path, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'is not a readable file' },
);

/**
 * A number of seconds, or empty for none (what it sets is then off). Zero is refused rather than read as
 * "off", so that a slip never turns a check off unnoticed.
 */
const optionalSeconds = (max: number) =>
  z.union([z.string(), z.number()]).transform((value, ctx): number | null => {
    if (value === '') return null;
    const parsed = int(1, max).safeParse(value);
    if (parsed.success) return parsed.data;
    ctx.addIssue({ code: 'custom', message: `must be a whole number of seconds from 1 to ${max}, or unset for none` });
    return z.NEVER;
  });

const flag = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])], { error: 'must be true or false' })
  .transform((value) => value === true || value === 'true' || value === '1');

/**
 * `name=secret` pairs separated by commas: INGEST_TOKENS (source=token) and OUTBOX_SYNC_CODEC_TOKENS
 * (operator=token). A name may hold several tokens (to rotate them), a token names one holder only.
 */
const tokenPairs = z.string().transform((value, ctx) => {
  const pairs: { name: string; token: string }[] = [];
  const seen = new Set<string>();
  const entries = value.split(',').map((entry) => entry.trim());
  if (value.trim() === '') return pairs;
  for (const [i, entry] of entries.entries()) {
    const at = entry.indexOf('=');
    const name = at < 0 ? '' : entry.slice(0, at);
    const token = at < 0 ? '' : entry.slice(at + 1);
    let problem: string | undefined;
    if (!name || !token) problem = `pair ${i + 1} must be name=token`;
    else if (!/^[A-Za-z0-9._:@-]{1,200}$/.test(name)) problem = `pair ${i + 1}: the name must be 1 to 200 letters, digits or ._:@-`;
    else if (!/^[\x21-\x7e]{16,512}$/.test(token)) problem = `the token of "${name}" must be 16 to 512 printable characters without spaces`;
    else if (seen.has(token)) problem = `the token of "${name}" is given twice; a token names one holder`;
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    seen.add(token);
    pairs.push({ name, token });
  }
  return pairs;
});

/** Comma-separated names, each as a token pair would name its holder. */
const nameList = z.string().transform((value, ctx) => {
  const names = value.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const bad = names.find((name) => !/^[A-Za-z0-9._:@-]{1,200}$/.test(name));
  if (bad !== undefined) {
    ctx.addIssue({ code: 'custom', message: `"${bad}" is not a name (1 to 200 letters, digits or ._:@-)` });
    return z.NEVER;
  }
  return [...new Set(names)];
});

/** AES-256 keys for the payload codec, `keyId=base64key` pairs; the first encrypts, all decrypt. */
const codecKeys = z.string().transform((value, ctx) => {
  const keys: { id: string; key: Buffer }[] = [];
  if (value.trim() === '') return keys;
  for (const [i, entry] of value.split(',').map((e) => e.trim()).entries()) {
    const at = entry.indexOf('=');
    const id = at < 0 ? '' : entry.slice(0, at);
    const encoded = at < 0 ? '' : entry.slice(at + 1);
    const key = Buffer.from(encoded, 'base64');
    let problem: string | undefined;
    if (!id || !encoded) problem = `pair ${i + 1} must be keyId=base64key`;
    else if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) problem = `pair ${i + 1}: the key id must be 1 to 64 letters, digits or ._-`;
    else if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) problem = `key "${id}" is not base64`;
    else if (key.length !== 32) problem = `key "${id}" must be 32 bytes (AES-256), got ${key.length}; make one with: openssl rand -base64 32`;
    else if (keys.some((k) => k.id === id)) problem = `key id "${id}" is given twice`;
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
      return z.NEVER;
    }
    keys.push({ id, key });
  }
  return keys;
});

/** Each setting: its environment name, its schema and its default. */
const settings = {
  outboxDatabaseUrl: ['OUTBOX_DATABASE_URL', url(['postgres:', 'postgresql:']), 'postgres://127.0.0.1:5432/outbox_sync'],
  targetDatabaseUrl: ['TARGET_DATABASE_URL', url(['postgres:', 'postgresql:']), 'postgres://127.0.0.1:5432/outbox_sync_target'],
  redisUrl: ['REDIS_URL', url(['redis:', 'rediss:']), 'redis://127.0.0.1:6379'],
  redisPrefix: ['OUTBOX_SYNC_REDIS_PREFIX', z.string().min(1).max(100), 'outbox-sync:'],
  temporalAddress: ['TEMPORAL_ADDRESS', z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port'), '127.0.0.1:7233'],
  temporalNamespace: ['TEMPORAL_NAMESPACE', z.string().min(1).max(255), 'default'],
  taskQueue: ['OUTBOX_SYNC_TASK_QUEUE', z.string().min(1).max(255), 'outbox-sync'],
  /** Workflow ids are this prefix and the message id; one prefix per outbox sharing a namespace. */
  workflowIdPrefix: ['OUTBOX_SYNC_WORKFLOW_ID_PREFIX', z.string().regex(/^[A-Za-z0-9._:/-]{1,100}$/, 'must be 1 to 100 letters, digits or ._:/-'), 'outbox-message-'],
  temporalUiUrl: ['TEMPORAL_UI_URL', url(['http:', 'https:']), 'http://127.0.0.1:8233'],
  /** Executions of one message before it is declared dead. */
  maxExecutions: ['OUTBOX_SYNC_MAX_EXECUTIONS', int(1, 1000), 5],
  /** Delay before a failed message runs again: base × 2^(executions − 1), capped. */
  redriveBaseMs: ['OUTBOX_SYNC_REDRIVE_BASE_MS', int(0, 86_400_000), 5_000],
  redriveMaxMs: ['OUTBOX_SYNC_REDRIVE_MAX_MS', int(0, 86_400_000), 600_000],
  /** How long a message may sit in `processing` before the reconciler checks its workflow. */
  leaseMs: ['OUTBOX_SYNC_LEASE_MS', int(100, 86_400_000), 60_000],
  claimBatchSize: ['OUTBOX_SYNC_CLAIM_BATCH', int(1, 10_000), 200],
  pollIntervalMs: ['OUTBOX_SYNC_POLL_MS', int(10, 3_600_000), 1_000],
  /** How often a dispatcher's publisher looks for transitions to append to the success and failure streams. */
  publishIntervalMs: ['OUTBOX_SYNC_STREAM_PUBLISH_MS', int(10, 3_600_000), 100],
  /**
   * The SLA: a message not completed this long after it was created (or sent again by an operator) is
   * overdue. Empty: no SLA.
   */
  slaSeconds: ['OUTBOX_SYNC_SLA_SECONDS', optionalSeconds(31_536_000), ''],
  cacheTtlSeconds: ['OUTBOX_SYNC_CACHE_TTL_SECONDS', int(1, 31_536_000), 86_400],
  maxDataBytes: ['OUTBOX_SYNC_MAX_DATA_BYTES', int(2, 64 * 1024 * 1024), 256 * 1024],
  /** Temporal's retries of one activity within one execution. */
  activityMaxAttempts: ['OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS', int(1, 1000), 8],
  activityInitialIntervalMs: ['OUTBOX_SYNC_ACTIVITY_INITIAL_INTERVAL_MS', int(1, 3_600_000), 200],
  activityMaxIntervalMs: ['OUTBOX_SYNC_ACTIVITY_MAX_INTERVAL_MS', int(1, 3_600_000), 10_000],
  activityTimeoutMs: ['OUTBOX_SYNC_ACTIVITY_TIMEOUT_MS', int(100, 3_600_000), 30_000],
  logLevel: ['OUTBOX_SYNC_LOG_LEVEL', z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }), 'info'],
  /** `auto`: readable on a terminal, JSON lines otherwise. */
  logFormat: ['OUTBOX_SYNC_LOG_FORMAT', z.enum(['json', 'pretty', 'auto'], { error: 'must be json, pretty or auto' }), 'auto'],
  /** host:port where a worker or dispatcher serves GET /metrics; empty serves none. */
  metricsAddress: ['OUTBOX_SYNC_METRICS_ADDRESS', z.union([z.literal(''), z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port')]), ''],
  /** TLS for Redis: a rediss:// URL turns it on; these add a CA and a client certificate (mTLS). */
  redisTlsCaFile: ['REDIS_TLS_CA_FILE', file, ''],
  redisTlsCertFile: ['REDIS_TLS_CERT_FILE', file, ''],
  redisTlsKeyFile: ['REDIS_TLS_KEY_FILE', file, ''],
  /** TLS for Temporal (on by itself with a client certificate or an API key, as Temporal Cloud needs). */
  temporalTls: ['TEMPORAL_TLS', flag, false],
  temporalTlsCaFile: ['TEMPORAL_TLS_CA_FILE', file, ''],
  temporalTlsCertFile: ['TEMPORAL_TLS_CERT_FILE', file, ''],
  temporalTlsKeyFile: ['TEMPORAL_TLS_KEY_FILE', file, ''],
  temporalTlsServerName: ['TEMPORAL_TLS_SERVER_NAME', z.string().max(255), ''],
  temporalApiKey: ['TEMPORAL_API_KEY', z.string().max(8192), ''],
  /** `ingest`, the HTTP server for devices. Port 0 takes any free port. */
  ingestPort: ['INGEST_PORT', int(0, 65_535), 8080],
  ingestHost: ['INGEST_HOST', z.string().regex(/^[^\s/]{1,255}$/, 'must be a host name or an IP address'), '127.0.0.1'],
  /** `source=token` pairs: a device's bearer token names the source its messages are stored under. */
  ingestTokens: ['INGEST_TOKENS', tokenPairs, ''],
  /** The largest request body `ingest` reads (a batch included). */
  ingestMaxBodyBytes: ['INGEST_MAX_BODY_BYTES', int(1024, 1024 * 1024 * 1024), 4 * 1024 * 1024],
  /** Payload encryption of what Temporal stores; empty leaves payloads as plain JSON. */
  codecKeys: ['OUTBOX_SYNC_CODEC_KEYS', codecKeys, ''],
  /** `codec-server`, the endpoint the Temporal UI decodes payloads through. */
  codecPort: ['OUTBOX_SYNC_CODEC_PORT', int(0, 65_535), 8089],
  codecHost: ['OUTBOX_SYNC_CODEC_HOST', z.string().regex(/^[^\s/]{1,255}$/, 'must be a host name or an IP address'), '127.0.0.1'],
  /** `operator=token` pairs allowed to see decrypted payloads through the codec server. */
  codecTokens: ['OUTBOX_SYNC_CODEC_TOKENS', tokenPairs, ''],
  /** `ui`, the outbox page for operators (a process of its own, apart from ingest). Port 0 takes any free port. */
  uiPort: ['OUTBOX_SYNC_UI_PORT', int(0, 65_535), 8090],
  uiHost: ['OUTBOX_SYNC_UI_HOST', z.string().regex(/^[^\s/]{1,255}$/, 'must be a host name or an IP address'), '127.0.0.1'],
  /** `name=token` pairs for the outbox page; every token may look. */
  uiTokens: ['OUTBOX_SYNC_UI_TOKENS', tokenPairs, ''],
  /** Names from OUTBOX_SYNC_UI_TOKENS that may also act (retry); none by default. */
  uiOperators: ['OUTBOX_SYNC_UI_OPERATORS', nameList, ''],
  /** A JSON file mapping entities to the user's own tables (stores/target/mapping.ts); empty: all to synced_records. */
  targetsFile: ['OUTBOX_SYNC_TARGETS', file, ''],
  /** Connections per target database, in each worker. */
  targetPoolSize: ['OUTBOX_SYNC_TARGET_POOL_SIZE', int(1, 1000), 10],
  /** Backpressure: dispatchers claim no more while this many messages are in processing. */
  maxInFlight: ['OUTBOX_SYNC_MAX_IN_FLIGHT', int(1, 1_000_000), 1_000],
} as const;

/** Settings that only make sense together. */
const PAIRS: [keyof Settings, keyof Settings][] = [
  ['redisTlsCertFile', 'redisTlsKeyFile'],
  ['temporalTlsCertFile', 'temporalTlsKeyFile'],
];

/** Settings whose values are never repeated in an error (they hold tokens or keys). */
const SECRET_SETTINGS = new Set(['INGEST_TOKENS', 'OUTBOX_SYNC_CODEC_KEYS', 'OUTBOX_SYNC_CODEC_TOKENS', 'OUTBOX_SYNC_UI_TOKENS']);

type Settings = typeof settings;
export type Config = { [K in keyof Settings]: z.infer<Settings[K][1]> } & {
  /** The mapping OUTBOX_SYNC_TARGETS names, read and checked; null when unset. */
  targets: TargetsMapping | null;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the settings from `env` (and the file OUTBOX_SYNC_CONFIG names); throws ConfigError with one line. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const file = env.OUTBOX_SYNC_CONFIG ? readConfigFile(env.OUTBOX_SYNC_CONFIG) : {};
  const config: Record<string, unknown> = {};
  for (const [field, [name, schema, fallback]] of Object.entries(settings)) {
    const raw = env[name] !== undefined && env[name] !== '' ? env[name] : file[name];
    const value = raw === undefined || raw === '' ? fallback : raw;
    const parsed = (schema as z.ZodType).safeParse(value);
    if (!parsed.success) {
      const got = SECRET_SETTINGS.has(name) ? '' : ` (got ${JSON.stringify(raw)})`;
      throw new ConfigError(`${name}: ${parsed.error.issues[0]?.message ?? 'invalid value'}${got}`);
    }
    config[field] = parsed.data;
  }
  for (const pair of PAIRS) {
    const [given, missing] = config[pair[0]] ? pair : [pair[1], pair[0]];
    if (config[given] && !config[missing]) throw new ConfigError(`${settings[missing][0]}: must be set together with ${settings[given][0]}`);
  }
  if ((config.redisTlsCaFile || config.redisTlsCertFile) && !String(config.redisUrl).startsWith('rediss:')) {
    throw new ConfigError(`${config.redisTlsCaFile ? 'REDIS_TLS_CA_FILE' : 'REDIS_TLS_CERT_FILE'}: needs a rediss:// REDIS_URL (TLS)`);
  }
  const uiNames = new Set((config.uiTokens as Config['uiTokens']).map((t) => t.name));
  const stranger = (config.uiOperators as Config['uiOperators']).find((name) => !uiNames.has(name));
  if (stranger !== undefined) throw new ConfigError(`OUTBOX_SYNC_UI_OPERATORS: "${stranger}" is not a name in OUTBOX_SYNC_UI_TOKENS`);
  try {
    config.targets = config.targetsFile ? readTargetsMapping(config.targetsFile as string, env) : null;
  } catch (err) {
    if (err instanceof TargetsError) throw new ConfigError(err.message);
    throw err;
  }
  return config as Config;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`OUTBOX_SYNC_CONFIG: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`OUTBOX_SYNC_CONFIG: ${path} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`OUTBOX_SYNC_CONFIG: ${path} must hold a JSON object of setting names to values`);
  }
  const known = new Set(Object.values(settings).map(([name]) => name as string));
  const unknown = Object.keys(parsed).find((name) => !known.has(name));
  if (unknown) throw new ConfigError(`OUTBOX_SYNC_CONFIG: ${path} names an unknown setting ${unknown}`);
  return parsed as Record<string, unknown>;
}
