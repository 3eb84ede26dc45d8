// The outbox page's API, typed as `outbox-sync ui` serves it. Every call goes to the same origin with the
// session cookie; a 401 from any of them (but signing in) tells the page to show the sign-in view.

// The JSON each route sends is typed once, on the server side (servers/ui/wire.ts), and checked there
// against what the server really sends; these are type-only imports, so nothing of the server is bundled.
import type { Activity, LastVerification, MatchingRetried, Me, MessageDetail, MessagePage, MessageRetried, OutboxStatus } from '../../wire';

export type { ActivityMinute, Execution, HistoryEntry, Me, MessageDetail, MessageRow, OutboxStatus, VerifyRun } from '../../wire';

// The statuses in the outbox's own order, from its state machine: a small, pure module, bundled as it is.
export { ALL_STATUSES, OPEN_STATUSES } from '../../../../stores/outbox/statuses';

/** The list's filter, as in the URL and in POST /api/retry. Empty strings mean "any". */
export interface MessageFilter {
  status: string;
  entity: string;
  key: string;
  source: string;
  error: string;
}

export const DEFAULT_STATUS = 'failed,dead';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

let unauthorized: () => void = () => {};

/** Who to tell when the session is gone (the app shows the sign-in view). */
export function onUnauthorized(listener: () => void): void {
  unauthorized = listener;
}

interface RequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** Signing in answers 401 for a wrong token: that is the form's error, not a lost session. */
  signingIn?: boolean;
}

async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const init: RequestInit = { method, signal: options.signal, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (options.body !== undefined) {
    init.headers = { accept: 'application/json', 'content-type': 'application/json' };
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  if (response.status === 204) return undefined as T;
  const payload = await readJson(response);
  if (response.ok) return payload as T;
  if (response.status === 401 && !options.signingIn) unauthorized();
  const message = typeof payload === 'object' && payload !== null && 'error' in payload ? String(payload.error) : `${response.status} ${response.statusText}`;
  throw new ApiError(response.status, message);
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

export function signIn(token: string): Promise<void> {
  return request('POST', '/api/session', { body: { token }, signingIn: true });
}

export function signOut(): Promise<void> {
  return request('DELETE', '/api/session');
}

export function readMe(signal?: AbortSignal): Promise<Me> {
  return request('GET', '/api/me', { signal });
}

export function readStatus(signal?: AbortSignal): Promise<OutboxStatus> {
  return request('GET', '/api/status', { signal });
}

export function readActivity(signal?: AbortSignal): Promise<Activity> {
  return request('GET', '/api/activity', { signal });
}

export function readLastVerification(signal?: AbortSignal): Promise<LastVerification> {
  return request('GET', '/api/verify', { signal });
}

/** The filter's set fields only: the server treats a missing field as "any". */
function filterFields(filter: MessageFilter): Record<string, string> {
  const fields: Record<string, string> = { status: filter.status || DEFAULT_STATUS };
  for (const name of ['entity', 'key', 'source', 'error'] as const) {
    if (filter[name] !== '') fields[name] = filter[name];
  }
  return fields;
}

export function listMessages(filter: MessageFilter, after: string | null, signal?: AbortSignal): Promise<MessagePage> {
  const query = new URLSearchParams(filterFields(filter));
  if (after !== null) query.set('after', after);
  query.set('limit', '50');
  return request('GET', `/api/messages?${query}`, { signal });
}

export function readMessage(id: number, signal?: AbortSignal): Promise<MessageDetail> {
  return request('GET', `/api/messages/${id}`, { signal });
}

export function retryMessage(id: number): Promise<MessageRetried> {
  return request('POST', `/api/messages/${id}/retry`, { body: {} });
}

export function retryMatching(filter: MessageFilter): Promise<MatchingRetried> {
  return request('POST', '/api/retry', { body: filterFields(filter) });
}
