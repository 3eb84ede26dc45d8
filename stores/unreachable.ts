/**
 * A driver's error (pg, mysql2, ioredis, Node's sockets) when a server cannot be reached: told apart from
 * an error of the request itself, and said in plain words for a log line or an HTTP reply.
 */

const SOCKET_REASONS: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused',
  ENOTFOUND: 'the host name is not known',
  EAI_AGAIN: 'the host name cannot be looked up now',
  ETIMEDOUT: 'the connection timed out',
  ECONNRESET: 'the connection was reset',
  EPIPE: 'the connection was closed',
  EHOSTUNREACH: 'the host cannot be reached',
  ENETUNREACH: 'the network cannot be reached',
  PROTOCOL_CONNECTION_LOST: 'the connection was closed',
};

const SERVER_REASONS: Record<string, string> = {
  '57P01': 'the server is shutting down',
  '57P02': 'the server is shutting down',
  '57P03': 'the server is starting up',
};

// What pg and ioredis say, without a code, when a connection ends or never opens in time.
const LOST_CONNECTION = /connection terminated|timeout exceeded when trying to connect|connection is closed|max retries per request|stream isn't writeable|command timed out/i;

/** True when the error says the server is down, starting, stopping or out of reach, not that the request was wrong. */
export function isUnreachable(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (code in SOCKET_REASONS || code in SERVER_REASONS || /^08/.test(code))) return true;
  return typeof message === 'string' && LOST_CONNECTION.test(message);
}

/** The error in a few plain words: what the socket or server said, else the first line of its message. */
export function plainReason(err: unknown): string {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    const reason = SOCKET_REASONS[code] ?? SERVER_REASONS[code];
    if (reason) return reason;
  }
  // An AggregateError (every address of a host refused) has a code but an empty message.
  const first = typeof message === 'string' ? message.split('\n')[0]!.trim() : '';
  return first || (typeof code === 'string' ? code : String(err));
}
