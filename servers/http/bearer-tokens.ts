/**
 * Bearer tokens from the configuration, each naming its holder: a device's source (ingest), an operator
 * (the codec server, the outbox page).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export class BearerTokens {
  private readonly digests: { name: string; digest: Buffer }[];

  constructor(pairs: readonly { name: string; token: string }[]) {
    this.digests = pairs.map(({ name, token }) => ({ name, digest: digest(token) }));
  }

  /**
   * The holder named by an `Authorization: Bearer <token>` header; null when the header is missing,
   * malformed or the token unknown. Compares digests in constant time, every one of them.
   */
  holder(authorization: string | undefined): string | null {
    const match = /^Bearer +(\S+) *$/i.exec(authorization ?? '');
    return match ? this.holderOf(match[1]!) : null;
  }

  /** The holder of a token presented on its own (the outbox page's cookie); null when unknown. */
  holderOf(token: string | undefined): string | null {
    if (!token) return null;
    const presented = digest(token);
    let found: string | null = null;
    for (const { name, digest: known } of this.digests) if (timingSafeEqual(presented, known)) found ??= name;
    return found;
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
