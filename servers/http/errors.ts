/**
 * Every refusal of the HTTP servers is one JSON line: `{"error": "...", "field": "..."}` (field when one
 * is to blame), with the status code that says whose fault it is.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isUnreachable, plainReason } from '../../stores/unreachable';

export interface ErrorBody {
  error: string;
  field?: string;
}

/**
 * ErrorBody as a JSON Schema, for the routes' documented replies (and their serializers). Not closed to
 * other fields: while a server shuts down, Fastify itself answers 503 with `{"error", "message",
 * "statusCode"}`.
 */
export const ERROR_BODY_SCHEMA = {
  $id: 'ErrorBody',
  type: 'object',
  description: 'A refusal: the reason in one line, and the field to blame when there is one.',
  required: ['error'],
  properties: {
    error: { type: 'string', description: 'why the request was refused, in plain words' },
    field: { type: 'string', description: 'the field (or path parameter) at fault, as `data`, `[2].data` or `id`' },
  },
} as const;

/** A refusal a handler throws: its status, reason and (optionally) the field to blame. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export function sendError(reply: FastifyReply, statusCode: number, error: string, field?: string): FastifyReply {
  const body: ErrorBody = field ? { error, field } : { error };
  return reply.code(statusCode).send(body);
}

export interface ErrorReplyOptions {
  onInternalError: (err: unknown) => void;
  notFound?: (request: FastifyRequest, reply: FastifyReply) => unknown;
  /**
   * What the server's requests need, in an operator's words ("the outbox database"): an error saying it
   * cannot be reached is a 503 naming it, not a 500, and the request may be repeated once it is back.
   */
  needs?: string;
  /** Told once per request that met `needs` down. */
  onUnavailable?: (reason: string) => void;
}

/**
 * A refused body is read to its end, and thrown away, before the 413 goes out with `connection: close`:
 * closing while the client still sends makes its next write fail (EPIPE), and most clients then report
 * that instead of the reply. Past these bounds the connection is closed anyway.
 */
const DISCARD_BYTES = 64 * 1024 * 1024;
const DISCARD_MS = 10_000;

function discardBody(body: IncomingMessage): Promise<void> {
  if (body.readableEnded || body.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      clearTimeout(timer);
      body.off('data', count);
      body.off('end', done);
      body.off('close', done);
      body.off('error', done);
      resolve();
    };
    const count = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > DISCARD_BYTES) done();
    };
    const timer = setTimeout(done, DISCARD_MS);
    body.on('data', count);
    body.once('end', done);
    body.once('close', done);
    body.once('error', done);
    body.resume();
  });
}

/** How long a client is asked to wait before repeating a request that met a dependency down. */
const RETRY_AFTER_SECONDS = 5;

/**
 * Turns the framework's own refusals (media type, size, JSON syntax, unknown route) into the same shape,
 * and a dependency that does not answer into a 503.
 */
export function installErrorReplies(app: FastifyInstance, options: ErrorReplyOptions): void {
  app.setNotFoundHandler(options.notFound ?? noRoute);
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof HttpError) return sendError(reply, err.statusCode, err.message, err.field);
    switch (err.code) {
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 415, 'Content-Type must be application/json');
      case 'FST_ERR_CTP_BODY_TOO_LARGE': {
        const reason = `the body is larger than the limit of ${reply.routeOptions.bodyLimit ?? 'the server'} bytes`;
        return discardBody(request.raw).then(() => sendError(reply, 413, reason));
      }
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendError(reply, 400, 'the body is empty; send JSON');
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return sendError(reply, 400, 'the body is not valid JSON');
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // A JSON syntax error, or an object key such as __proto__ that the parser refuses.
      const reason = err instanceof SyntaxError ? 'the body is not valid JSON' : (err.message.split('\n')[0] ?? 'bad request');
      return sendError(reply, status, reason);
    }
    if (options.needs && isUnreachable(err)) {
      const reason = `${options.needs} does not answer (${plainReason(err)})`;
      options.onUnavailable?.(reason);
      return sendError(reply.header('retry-after', String(RETRY_AFTER_SECONDS)), 503, `${reason}; try again later`);
    }
    options.onInternalError(err);
    return sendError(reply, 500, 'internal error; the request may be repeated');
  });
}

/** 404 naming the method and path (without the query). */
export function noRoute(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(reply, 404, `no route ${request.method} ${request.url.split('?')[0]}`);
}
