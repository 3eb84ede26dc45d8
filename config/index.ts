/**
 * Settings, parsed and validated in one place. They come from the environment, optionally layered over a
 * JSON config file named by OUTBOX_SYNC_CONFIG (the environment wins). A wrong value stops the process
 * with one line that names the setting and what is wrong with it.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

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
  cacheTtlSeconds: ['OUTBOX_SYNC_CACHE_TTL_SECONDS', int(1, 31_536_000), 86_400],
  maxDataBytes: ['OUTBOX_SYNC_MAX_DATA_BYTES', int(2, 64 * 1024 * 1024), 256 * 1024],
  /** Temporal's retries of one activity within one execution. */
  activityMaxAttempts: ['OUTBOX_SYNC_ACTIVITY_MAX_ATTEMPTS', int(1, 1000), 8],
  activityInitialIntervalMs: ['OUTBOX_SYNC_ACTIVITY_INITIAL_INTERVAL_MS', int(1, 3_600_000), 200],
  activityMaxIntervalMs: ['OUTBOX_SYNC_ACTIVITY_MAX_INTERVAL_MS', int(1, 3_600_000), 10_000],
  activityTimeoutMs: ['OUTBOX_SYNC_ACTIVITY_TIMEOUT_MS', int(100, 3_600_000), 30_000],
} as const;

type Settings = typeof settings;
export type Config = { [K in keyof Settings]: z.infer<Settings[K][1]> };

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
      throw new ConfigError(`${name}: ${parsed.error.issues[0]?.message ?? 'invalid value'} (got ${JSON.stringify(raw)})`);
    }
    config[field] = parsed.data;
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
