/**
 * A consumer of the success and failure streams, as a user's service would run one beside the pipeline:
 * it reads both streams with a blocking XREAD from the last id it saw, and when Redis does not answer (cut,
 * restarted, flushed) it keeps that id and tries again. Stream ids are times, so after a restart or a
 * FLUSHALL the new entries come after the last id it saw, and it resumes without a gap. The chaos run
 * then holds what it read against the outbox's history of transitions.
 */
import Redis from 'ioredis';
import type { StreamName } from '../../stores/cache';

/** One entry as the consumer read it. */
export interface ReadEntry {
  stream: StreamName;
  messageId: string;
  status: string;
}

const STREAMS: readonly StreamName[] = ['succeeded', 'failed'];

/** Stream ids are `<milliseconds>-<sequence>`; compared as numbers, not as text. */
export function streamIdAtLeast(id: string, than: string): boolean {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint];
  const [thanMs, thanSeq] = than.split('-').map(BigInt) as [bigint, bigint];
  return ms > thanMs || (ms === thanMs && seq >= thanSeq);
}

export class StreamConsumer {
  /** Every entry read, by its `transition` (the history row's id); a repeated entry adds to its list. */
  readonly byTransition = new Map<string, ReadEntry[]>();
  entries = 0;
  /** Reads that failed because Redis did not answer, each followed by another try from the same ids. */
  failedReads = 0;
  private readonly lastIds: Record<StreamName, string> = { succeeded: '0', failed: '0' };
  private readonly redis: Redis;
  private stopping = false;
  private readonly loop: Promise<void>;

  /** Starts reading at once, from the beginning of both streams. */
  constructor(
    port: number,
    private readonly keyOf: (stream: StreamName) => string,
  ) {
    // One try per command: an outage shows as a failed read, which the loop counts and tries again.
    this.redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
    this.redis.on('error', () => undefined);
    this.loop = this.run();
  }

  /** Whether the consumer has read each stream at least up to the given id (null: nothing to read). */
  hasRead(ids: Record<StreamName, string | null>): boolean {
    return STREAMS.every((stream) => ids[stream] === null || streamIdAtLeast(this.lastIds[stream], ids[stream]));
  }

  private async run(): Promise<void> {
    const keys = STREAMS.map(this.keyOf);
    while (!this.stopping) {
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = (await this.redis.xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', ...keys, ...STREAMS.map((s) => this.lastIds[s]))) as typeof reply;
      } catch {
        this.failedReads++;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      for (const [key, entries] of reply ?? []) {
        const stream = STREAMS[keys.indexOf(key)]!;
        for (const [id, flat] of entries) {
          const fields: Record<string, string> = {};
          for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
          const seen = this.byTransition.get(fields.transition!) ?? [];
          seen.push({ stream, messageId: fields.messageId!, status: fields.status! });
          this.byTransition.set(fields.transition!, seen);
          this.entries++;
          this.lastIds[stream] = id;
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    this.redis.disconnect();
  }
}
