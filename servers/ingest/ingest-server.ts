/**
 * The HTTP server for business devices. A device authenticates with a bearer token from INGEST_TOKENS; the
 * token names the source its messages are stored under and the only source whose messages it may read.
 *
 *   POST /v1/messages       one message (an object) or a batch (an array, stored all or none) → 202
 *   GET  /v1/messages/:id   status, attempts, last error, workflow id, timestamps (overdue too), Temporal UI link
 *   GET  /healthz           200 when the outbox database answers, 503 naming what is down
 *   GET  /metrics           Prometheus text from prom-client's default registry
 *   GET  /v1/openapi.json   the OpenAPI document of the routes above, generated from their schemas
 *
 * Messages are checked by the one validator the library and the CLI use (stores/outbox/validate.ts), so a
 * field is refused with the same words everywhere, and stored by outbox/enqueue.ts; 202 comes after the
 * commit. Every route declares its request and every reply it gives in schemas.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import type pg from 'pg';
import { packageRoot } from '../../config/package-root';
import { collectProcessMetrics, exposition, registry } from '../../observability/metrics';
import type { Config } from '../../config/config';
import { InvalidMessageError, validateBatch, validateMessage, type ValidMessage } from '../../stores/outbox/validate';
import { withExactIntegers } from '../../stores/outbox/message-json';
import { IdempotencyConflictError, insertMessages } from '../../stores/outbox/enqueue';
import { readMessage } from '../../stores/outbox/messages';
import { placementOf } from '../../stores/target/mapping';
import { workflowUrl } from '../../temporal/ui-links';
import { BearerTokens } from '../http/bearer-tokens';
import { HttpError, installErrorReplies, sendError } from '../http/errors';
import { BEARER, GET_MESSAGE, HEALTHZ, METRICS, POST_MESSAGES, SHARED_SCHEMAS } from './schemas';

export type IngestSettings = Pick<Config, 'ingestTokens' | 'ingestMaxBodyBytes' | 'maxDataBytes' | 'temporalUiUrl' | 'temporalNamespace' | 'targets'>;

export interface IngestStores {
  outbox: pg.Pool;
}

export interface IngestOptions {
  /** Called with unexpected errors (answered 500). */
  onInternalError?: (err: unknown) => void;
  /** Called with the reason when a request meets the outbox database down (answered 503). */
  onUnavailable?: (reason: string) => void;
  /** How long /healthz waits for the database. */
  healthTimeoutMs?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The source the bearer token names. */
    source: string;
  }
}

export function buildIngestServer(stores: IngestStores, config: IngestSettings, options: IngestOptions = {}): FastifyInstance {
  const tokens = new BearerTokens(config.ingestTokens);
  const app = Fastify({ bodyLimit: config.ingestMaxBodyBytes, logger: false, return503OnClosing: true });
  // Only JSON is accepted: without this, text/plain would be read as a string and refused as a message.
  app.removeContentTypeParser('text/plain');
  // JSON bodies must be valid UTF-8: the default parser would replace bad bytes with U+FFFD and store
  // a message that is not what the device sent. Past that check, Fastify's own (prototype-safe) parser,
  // then integers past 2^53 made exact again.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    let text: string;
    try {
      text = utf8.decode(body as Buffer);
    } catch {
      done(new HttpError(400, 'the body is not valid UTF-8'), undefined);
      return;
    }
    // Fastify's JSON parser answers through `done`; its declared promise result is never one here.
    void parseJson(request, text, (err, parsed) => {
      if (err) return done(err, undefined);
      try {
        done(null, withExactIntegers(text, parsed));
      } catch (e) {
        done(new HttpError(400, `the body is not valid JSON: ${(e as Error).message}`), undefined);
      }
    });
  });
  installErrorReplies(app, {
    onInternalError: options.onInternalError ?? ((err) => console.error(err)),
    needs: 'the outbox database',
    ...(options.onUnavailable ? { onUnavailable: options.onUnavailable } : {}),
  });
  collectProcessMetrics();
  app.decorateRequest('source', '');
  // The swagger plugin records the routes declared once it is loaded: every route is declared in a plugin
  // registered after it (one on the root instance itself would be declared before it loads).
  app.register(fastifySwagger, OPENAPI_OPTIONS);
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  // The routes that need no token.
  app.register(async (open) => {
    // The document describes the API and holds nothing of anyone's: clients and tools read it before they
    // have a token. It documents every route but itself.
    open.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());

    open.get('/healthz', { schema: HEALTHZ }, async (_request, reply) => {
      const outbox = await check(stores.outbox.query('SELECT 1'), options.healthTimeoutMs ?? 2_000);
      const healthy = outbox === 'ok';
      return reply.code(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'unavailable', checks: { outbox } });
    });

    open.get('/metrics', { schema: METRICS }, async (_request, reply) => {
      return reply.type(registry.contentType).send(await exposition());
    });
  });

  app.register(
    async (v1) => {
      // The schemas document these routes; validate.ts checks what they receive (see schemas.ts).
      v1.setValidatorCompiler(() => () => true);
      // Before the body is read: a request without a valid token costs no parsing.
      v1.addHook('onRequest', async (request, reply) => {
        const source = tokens.holder(request.headers.authorization);
        if (source === null) {
          reply.header('WWW-Authenticate', 'Bearer');
          const reason = request.headers.authorization ? 'the bearer token is not known' : 'an Authorization: Bearer <token> header is required';
          return sendError(reply, 401, reason);
        }
        request.source = source;
      });

      v1.post('/messages', { schema: POST_MESSAGES }, async (request, reply) => {
        if (request.body === undefined) throw new HttpError(415, 'Content-Type must be application/json');
        const batch = Array.isArray(request.body);
        const messages = refuseInvalid(() =>
          batch ? validateBatch(request.body, { maxDataBytes: config.maxDataBytes }) : [validateMessage(request.body, { maxDataBytes: config.maxDataBytes })],
        );
        const stored = messages.map((message, i) => ownSource(message, request.source, batch ? `[${i}].source` : 'source'));
        let ids: number[];
        try {
          ids = await insertMessages(stores.outbox, stored);
        } catch (err) {
          if (err instanceof IdempotencyConflictError) throw new HttpError(409, err.message, 'idempotencyKey');
          throw err;
        }
        return reply.code(202).send(batch ? { ids } : { id: ids[0] });
      });

      v1.get<{ Params: { id: string } }>('/messages/:id', { schema: GET_MESSAGE }, async (request, reply) => {
        const id = parseId(request.params.id);
        const message = await readMessage(stores.outbox, id);
        if (!message) throw new HttpError(404, `message ${id} does not exist`);
        // Another source's message is refused, not hidden: ids are sequential, so hiding them protects nothing.
        if (message.source !== request.source) throw new HttpError(403, `message ${id} belongs to another source`);
        return reply.send({
          id: message.id,
          source: message.source,
          entity: message.entity,
          key: message.key,
          op: message.op,
          version: message.version,
          target: placementOf(config.targets, message.entity),
          status: message.status,
          attempts: message.executions,
          lastError: message.lastError,
          workflowId: message.workflowId,
          temporalUi: message.workflowId ? workflowUrl(config, message.workflowId) : null,
          createdAt: message.createdAt.toISOString(),
          updatedAt: message.updatedAt.toISOString(),
          completedAt: message.completedAt?.toISOString() ?? null,
          overdueAt: message.overdueAt?.toISOString() ?? null,
        });
      });
    },
    { prefix: '/v1' },
  );

  return app;
}

const OPENAPI_OPTIONS = {
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'outbox-sync ingest',
      version: (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version,
      description:
        'The HTTP server for devices: each posts business messages into the outbox under the source its bearer token names, ' +
        'and reads back the status of its own messages. Every refusal is one JSON line, `{"error": …, "field": …}`; ' +
        'while the server shuts down, every request is answered 503 `{"error": "Service Unavailable", …}`.',
    },
    tags: [
      { name: 'messages', description: 'for devices, with a bearer token' },
      { name: 'operations', description: 'for load balancers and Prometheus, without a token' },
    ],
    components: {
      securitySchemes: {
        [BEARER]: { type: 'http' as const, scheme: 'bearer', description: 'A token from INGEST_TOKENS (`source=token` pairs): it names the source.' },
      },
    },
  },
  // Shared schemas under their own names (components.schemas.Message), not def-0, def-1.
  refResolver: { buildLocalReference: (json: { $id?: unknown }, _base: unknown, _fragment: unknown, i: number) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
};

function refuseInvalid(validate: () => ValidMessage[]): ValidMessage[] {
  try {
    return validate();
  } catch (err) {
    if (err instanceof InvalidMessageError) throw new HttpError(400, err.message, err.field || undefined);
    throw err;
  }
}

/** A message is stored under the token's source; naming another source is not this token's to do. */
function ownSource(message: ValidMessage, source: string, field: string): ValidMessage {
  if (message.source !== null && message.source !== source) {
    throw new HttpError(403, `${field}: this token writes for source "${source}", not "${message.source}"`, field);
  }
  return { ...message, source };
}

function parseId(text: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new HttpError(400, `id: "${text}" is not a message id (a positive integer up to ${Number.MAX_SAFE_INTEGER})`, 'id');
  }
  return Number(text);
}

/** 'ok', or 'down: <reason>' when the check fails or takes longer than the timeout. */
async function check(probe: Promise<unknown>, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([probe, timeout]);
    return 'ok';
  } catch (err) {
    probe.catch(() => undefined);
    return `down: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    clearTimeout(timer);
  }
}
