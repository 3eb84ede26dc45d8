/**
 * Why Temporal cannot be reached, in plain words. The worker's native connection reports a Rust transport
 * error (`tonic::transport::Error(Transport, ConnectError(…))`); the client's says only "Failed to connect
 * before the deadline", so a plain TCP connection is tried to find out more.
 */
import { connect } from 'node:net';
import { plainReason } from '../stores/unreachable';

const NATIVE_REASONS: [RegExp, string][] = [
  [/connection refused/i, 'the connection was refused'],
  [/dns error|name or service not known|failed to lookup address/i, 'the host name is not known'],
  [/timed out|deadline/i, 'the connection timed out'],
  [/certificate|tls|handshake|invalid peer/i, 'the TLS handshake failed (check the TEMPORAL_TLS_* settings)'],
  [/connection reset|broken pipe/i, 'the connection was reset'],
];

/** The reason a connection to Temporal at `address` failed. */
export async function temporalReason(err: unknown, address: string): Promise<string> {
  const message = err instanceof Error ? err.message : String(err);
  if (/before the deadline/i.test(message)) {
    const tcp = await tryTcp(address);
    return tcp ?? 'the port accepts connections but Temporal does not answer there (check the address and the TEMPORAL_TLS_* settings)';
  }
  for (const [pattern, reason] of NATIVE_REASONS) if (pattern.test(message)) return reason;
  return plainReason(err).replace(/^tonic::transport::Error.*/, 'the connection failed');
}

/** The one line for a connection to Temporal that failed: the setting, the address and why. */
export async function temporalUnreachable(err: unknown, address: string): Promise<Error> {
  return new Error(`TEMPORAL_ADDRESS (${address}): ${await temporalReason(err, address)}`, { cause: err });
}

/** Undefined when a TCP connection to host:port opens within three seconds, else why not. */
function tryTcp(address: string): Promise<string | undefined> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 3_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('the connection timed out');
    });
    socket.once('error', (err) => resolve(plainReason(err)));
  });
}
