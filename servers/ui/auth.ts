/**
 * Who is asking, on the outbox page. Every token of OUTBOX_SYNC_UI_TOKENS may look; the names in
 * OUTBOX_SYNC_UI_OPERATORS may also act (retry). The browser signs in once (POST /api/session) and then
 * carries the token in an HttpOnly, SameSite=Strict cookie that page scripts cannot read; scripts send
 * `Authorization: Bearer <token>` instead. The cookie holds the token itself: it is the secret the operator
 * was given, nothing more, and signing out (or removing the token from the settings) ends it.
 *
 * Requests that change something also need a JSON body and, when the browser names an Origin, this
 * server's own: a cross-site form cannot send JSON, and a cross-site fetch names its origin.
 */
import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BearerTokens } from '../http/bearer-tokens';
import { HttpError, sendError } from '../http/errors';

export const SESSION_COOKIE = 'outbox_sync_ui';

export interface UiAuthSettings {
  uiTokens: readonly { name: string; token: string }[];
  uiOperators: readonly string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The name of the token the request came with (set on /api routes). */
    operator: string;
  }
}

/**
 * Installs, in the /api plugin it is given, the cookie plugin, the session routes and the checks every
 * route there passes.
 */
export async function installUiAuth(api: FastifyInstance, settings: UiAuthSettings): Promise<void> {
  const tokens = new BearerTokens(settings.uiTokens);
  await api.register(cookie);
  api.decorateRequest('operator', '');

  api.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'GET' && request.method !== 'HEAD' && !sameOrigin(request)) {
      return sendError(reply, 403, 'the request comes from another site (its Origin is not this server)');
    }
    if (request.method === 'POST' && !isJson(request)) return sendError(reply, 403, 'Content-Type must be application/json');
    if (request.routeOptions.url === '/api/session') return;
    const name = request.headers.authorization ? tokens.holder(request.headers.authorization) : tokens.holderOf(request.cookies[SESSION_COOKIE]);
    if (name === null) return sendError(reply, 401, 'sign in with an outbox page token');
    request.operator = name;
  });

  api.post<{ Body: { token?: unknown } }>('/session', async (request, reply) => {
    const token = typeof request.body?.token === 'string' ? request.body.token : undefined;
    if (tokens.holderOf(token) === null) throw new HttpError(401, 'unknown token');
    reply.setCookie(SESSION_COOKIE, token!, cookieOptions(request));
    return reply.code(204).send();
  });

  api.delete('/session', async (request, reply) => {
    reply.clearCookie(SESSION_COOKIE, cookieOptions(request));
    return reply.code(204).send();
  });
}

/** A preHandler for the routes that act: a token that may only look is refused. */
export function operatorsOnly(settings: UiAuthSettings) {
  const operators = new Set(settings.uiOperators);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!operators.has(request.operator)) {
      return sendError(reply, 403, 'this token may look but not act (add its name to OUTBOX_SYNC_UI_OPERATORS)');
    }
  };
}

export function canAct(settings: UiAuthSettings, name: string): boolean {
  return settings.uiOperators.includes(name);
}

/**
 * Secure when the browser came over https, directly or through a proxy that says so. A request that
 * claims https falsely only gets a cookie its own browser will not send back over http.
 */
function cookieOptions(request: FastifyRequest) {
  const forwarded = String(request.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim();
  return { httpOnly: true, sameSite: 'strict' as const, path: '/', secure: request.protocol === 'https' || forwarded === 'https' };
}

function isJson(request: FastifyRequest): boolean {
  return /^application\/json\s*(;|$)/i.test(request.headers['content-type'] ?? '');
}

/**
 * No Origin (a script) passes; otherwise its host must be the one asked: the Host header, or the host a
 * reverse proxy says it was asked for (X-Forwarded-Host). A cross-site page cannot set that header
 * without a CORS preflight, which this server never grants.
 */
function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  const forwarded = String(request.headers['x-forwarded-host'] ?? '').split(',')[0]!.trim();
  return host === request.headers.host || (forwarded !== '' && host === forwarded);
}
