import type { Config } from '../config/config';
import type { Cache, StreamName } from '../stores/cache';
import { describeAddress } from '../stores/target/mapping';
import { publishTransitions, type PublishPass, type PublishedTransition } from '../stores/outbox/stream-cursor';
import { isUnreachable, plainReason } from '../stores/unreachable';
import type { Duty } from './dispatcher';

/** Where the streams go: the cache's Redis, and its address for log lines (no secrets). */
export interface StreamsTarget {
  cache: Cache;
  /** `host:port`, as an operator finds it in REDIS_URL. */
  address: string;
}

/** The publisher's streams: `cache`'s Redis, named by REDIS_URL. */
export function streamsTarget(config: Pick<Config, 'redisUrl'>, cache: Cache): StreamsTarget {
  return { cache, address: describeAddress(config.redisUrl) };
}

/** Transitions appended per pass at most (one Redis round trip). */
export const PUBLISH_BATCH = 500;

/** Redis refused or failed the append: the cursor stayed where it was. */
export class AppendFailed extends Error {
  override name = 'AppendFailed';
}

/**
 * The publisher: appends every transition to completed (success stream), failed or dead (failure stream)
 * — whoever made it: the activities, the redriver, the reconciler, an operator — and every message the
 * SLA's sweep found overdue (failure stream, status `overdue`), from the outbox's own record of
 * transitions, behind a cursor kept in the outbox (stores/outbox/stream-cursor.ts). It is the only writer
 * of the streams, so that whatever Redis did meanwhile, every transition is appended at least once: while
 * Redis does not answer the cursor stays, and once it answers the transitions that waited go out in order.
 * An entry is repeated only when the cursor's move is lost after its append (a crash, a dropped
 * connection), with the same `transition`. One publisher per outbox at a time; a dispatcher whose pass
 * finds another one at it skips its turn.
 */
export async function publishStreams({ pool }: Pick<Duty, 'pool'>, streams: StreamsTarget, limit = PUBLISH_BATCH): Promise<PublishPass> {
  return publishTransitions(pool, limit, async (transitions) => {
    try {
      return await streams.cache.publishInOrder(transitions.map(toEntry));
    } catch (err) {
      throw new AppendFailed(plainReason(err), { cause: err });
    }
  });
}

function toEntry(t: PublishedTransition): { stream: StreamName; fields: Record<string, string | number> } {
  return {
    stream: t.status === 'completed' ? 'succeeded' : 'failed',
    fields: {
      messageId: t.messageId,
      entity: t.entity,
      key: t.key,
      version: t.version,
      status: t.status,
      attempt: t.attempt,
      ...(t.error === null ? {} : { error: t.error }),
      ...(t.actor === null ? {} : { actor: t.actor }),
      at: t.at.toISOString(),
      transition: t.transition,
    },
  };
}

/**
 * What the publisher's loop says about an outage, once when it begins and once when it ends, whatever
 * the number of passes in between: the line names what does not answer, and that nothing is lost.
 */
export class OutageReport {
  private current: string | null = null;

  constructor(
    private readonly logger: Duty['logger'],
    private readonly redisAddress: string,
  ) {}

  failed(err: unknown): void {
    const what = err instanceof AppendFailed ? this.redisLine(err) : `the outbox database cannot be read (${plainReason(err)})`;
    const kind = err instanceof AppendFailed ? 'redis' : 'outbox';
    if (this.current === kind) return;
    this.current = kind;
    this.logger.warn(`streams: ${what}; the transitions wait in the outbox and are appended once it answers`, { dependency: kind === 'redis' ? 'REDIS_URL' : 'OUTBOX_DATABASE_URL' });
  }

  succeeded(): void {
    if (this.current === null) return;
    const what = this.current === 'redis' ? `Redis at ${this.redisAddress} (REDIS_URL)` : 'the outbox database';
    this.current = null;
    this.logger.info(`streams: ${what} answers again; appending the transitions that waited`);
  }

  private redisLine(err: AppendFailed): string {
    const where = `Redis at ${this.redisAddress} (REDIS_URL)`;
    if (!isUnreachable(err.cause)) return `${where} refused the append: ${err.message}`;
    // The socket's own words when the driver kept them (refused, reset); its retry-limit message is no help.
    const code = (err.cause as { code?: unknown }).code;
    return typeof code === 'string' ? `${where} does not answer (${err.message})` : `${where} does not answer`;
  }
}
