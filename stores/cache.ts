/**
 * Redis: the staging cache of the latest version of each (entity, key), and the success and failure
 * streams. Both are conveniences: the outbox stays the truth, so a flushed cache or a lost stream entry
 * loses no message. The streams are written by the dispatcher's publisher (dispatcher/publish.ts), from
 * the outbox's record of transitions.
 */
import Redis from 'ioredis';

/**
 * Writes the staged copy only if it is newer than what the cache holds (compare-and-set on the version; a
 * plain SET would let an older message overwrite a newer copy). Versions are compared as decimal strings
 * because Lua numbers lose precision past 2^53.
 * Returns 1 when written, 2 when this version was already staged, 0 when a newer one is there.
 */
const STAGE_SCRIPT = `
local current = redis.call('HGET', KEYS[1], 'version')
local incoming = ARGV[1]
if current then
  if current == incoming then
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
    return 2
  end
  if #current > #incoming or (#current == #incoming and current > incoming) then
    return 0
  end
end
redis.call('HSET', KEYS[1], 'version', incoming, 'op', ARGV[2], 'data', ARGV[3], 'messageId', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`;

export type StageResult = 'staged' | 'already-staged' | 'newer-staged';

export interface StagedCopy {
  version: string;
  op: string;
  /** The data as JSON text ('' for a delete). */
  data: string;
  messageId: number;
}

export type StreamName = 'succeeded' | 'failed';

interface CacheRedis extends Redis {
  stageRecord(key: string, version: string, op: string, data: string, messageId: number, ttlMs: number): Promise<number>;
}

export class Cache {
  private readonly redis: CacheRedis;

  constructor(
    redis: Redis,
    readonly prefix: string,
    private readonly ttlMs: number,
    private readonly streamMaxLength = 100_000,
  ) {
    redis.defineCommand('stageRecord', { numberOfKeys: 1, lua: STAGE_SCRIPT });
    this.redis = redis as CacheRedis;
  }

  recordKey(entity: string, key: string): string {
    return `${this.prefix}record:${encodeURIComponent(entity)}:${encodeURIComponent(key)}`;
  }

  streamKey(stream: StreamName): string {
    return `${this.prefix}stream:${stream}`;
  }

  async stage(entity: string, key: string, copy: StagedCopy): Promise<StageResult> {
    const result = await this.redis.stageRecord(this.recordKey(entity, key), copy.version, copy.op, copy.data, copy.messageId, this.ttlMs);
    return result === 1 ? 'staged' : result === 2 ? 'already-staged' : 'newer-staged';
  }

  /** The staged copy of (entity, key), or null on a miss (never staged, expired, evicted or flushed). */
  async read(entity: string, key: string): Promise<StagedCopy | null> {
    const fields = await this.redis.hgetall(this.recordKey(entity, key));
    if (!fields.version) return null;
    return { version: fields.version, op: fields.op ?? '', data: fields.data ?? '', messageId: Number(fields.messageId) };
  }

  /** Appends a notification to a stream, trimmed to about `streamMaxLength` entries. */
  async publish(stream: StreamName, fields: StreamFields): Promise<string> {
    return (await this.redis.xadd(this.streamKey(stream), 'MAXLEN', '~', String(this.streamMaxLength), '*', ...flatten(fields)))!;
  }

  /**
   * Appends notifications in order, in one round trip, each trimmed as `publish` trims. Returns how many of
   * the first were appended before one failed (all of them, normally); throws when not even the first was.
   */
  async publishInOrder(entries: { stream: StreamName; fields: StreamFields }[]): Promise<number> {
    if (entries.length === 0) return 0;
    const batch = this.redis.pipeline();
    for (const { stream, fields } of entries) batch.xadd(this.streamKey(stream), 'MAXLEN', '~', String(this.streamMaxLength), '*', ...flatten(fields));
    const results = (await batch.exec()) ?? [];
    const failed = results.findIndex(([err]) => err);
    if (failed === 0) throw results[0]![0];
    return failed < 0 ? results.length : failed;
  }
}

/** An entry's fields, by name. */
export type StreamFields = Record<string, string | number>;

function flatten(fields: StreamFields): string[] {
  return Object.entries(fields).flatMap(([k, v]) => [k, String(v)]);
}
