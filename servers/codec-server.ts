/**
 * `outbox-sync codec-server`: the endpoint through which the Temporal UI (and `temporal workflow show
 * --codec-endpoint`) shows encrypted payloads in the clear, to operators allowed to see them.
 *
 *   POST /codec/decode   {"payloads": [Payload, …]} → the same, decrypted
 *   POST /codec/encode   {"payloads": [Payload, …]} → the same, encrypted under the current key
 *
 * A Payload is in protobuf's JSON form, every bytes field in base64:
 * `{"metadata": {"encoding": "YmluYXJ5L2VuY3J5cHRlZA=="}, "data": "…"}`. The UI sends Content-Type,
 * X-Namespace and, with "pass access token" on (it does so over https only), Authorization: Bearer; the
 * browser asks first with a CORS preflight, answered for TEMPORAL_UI_URL's origin alone.
 */
import cors from '@fastify/cors';
import type { Payload, PayloadCodec } from '@temporalio/common';
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ConfigError, type Config } from '../config/config';
import { untilSignal } from './until-signal';
import { createLogger } from '../observability/logging';
import { BearerTokens } from './http/bearer-tokens';
import { HttpError, installErrorReplies, sendError } from './http/errors';
import { AesGcmCodec } from '../temporal/payload-codec';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Operators allowed to see payloads; none means anyone who reaches the server (loopback only, see below). */
  operatorTokens: readonly { name: string; token: string }[];
  /** Tokens that authenticate but may not see payloads (the devices'): answered 403, not 401. */
  otherTokens?: readonly { name: string; token: string }[];
  /** The Temporal UI's origin, the one origin allowed by CORS. */
  uiOrigin: string;
  bodyLimit?: number;
  onInternalError?: (err: unknown) => void;
}

const base64 = z.string({ error: 'must be a base64 string' }).regex(/^[A-Za-z0-9+/_-]*={0,2}$/, { error: 'must be a base64 string' });
const payloadsBody = z.object(
  {
    payloads: z.array(
      z.object({ metadata: z.record(z.string(), base64).optional(), data: base64.optional() }, { error: 'must be a payload object' }),
      { error: 'must be an array of payloads' },
    ),
  },
  { error: 'the body must be {"payloads": [...]}' },
);

type JsonPayload = { metadata?: Record<string, string>; data?: string };

export function buildCodecServer(options: CodecServerOptions): FastifyInstance {
  const operators = new BearerTokens(options.operatorTokens);
  const open = options.operatorTokens.length === 0;
  const others = new BearerTokens(options.otherTokens ?? []);
  const app = Fastify({ bodyLimit: options.bodyLimit ?? 32 * 1024 * 1024, logger: false });
  app.removeContentTypeParser('text/plain');
  installErrorReplies(app, { onInternalError: options.onInternalError ?? ((err) => console.error(err)) });

  app.register(cors, {
    origin: [options.uiOrigin],
    methods: ['POST'],
    allowedHeaders: ['Content-Type', 'X-Namespace', 'Authorization'],
    credentials: true,
    maxAge: 600,
  });

  app.register(
    async (routes) => {
      routes.addHook('onRequest', async (request, reply) => {
        if (request.method === 'OPTIONS') return; // a CORS preflight carries no credentials
        if (open) return;
        const header = request.headers.authorization;
        if (operators.holder(header) !== null) return;
        if (others.holder(header) !== null) return sendError(reply, 403, 'this token may not see payloads');
        reply.header('WWW-Authenticate', 'Bearer');
        return sendError(reply, 401, header ? 'the bearer token is not known' : 'an Authorization: Bearer <token> header is required');
      });
      routes.post('/decode', async (request) => ({ payloads: (await convert(request.body, (p) => options.codec.decode(p))).map(toJson) }));
      routes.post('/encode', async (request) => ({ payloads: (await convert(request.body, (p) => options.codec.encode(p))).map(toJson) }));
    },
    { prefix: '/codec' },
  );
  return app;
}

async function convert(body: unknown, run: (payloads: Payload[]) => Promise<Payload[]>): Promise<Payload[]> {
  if (body === undefined) throw new HttpError(415, 'Content-Type must be application/json');
  const parsed = payloadsBody.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.reduce<string>((out, part) => (typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part)), '');
    throw new HttpError(400, field ? `${field}: ${issue.message}` : issue.message, field || undefined);
  }
  try {
    return await run(parsed.data.payloads.map(fromJson));
  } catch (err) {
    // A payload sealed under a key this server lacks, or one that does not authenticate.
    throw new HttpError(400, (err as Error).message);
  }
}

function fromJson(payload: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [name, value] of Object.entries(payload.metadata ?? {})) metadata[name] = Buffer.from(value, 'base64');
  return { metadata, data: Buffer.from(payload.data ?? '', 'base64') };
}

function toJson(payload: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload.metadata ?? {})) metadata[name] = Buffer.from(value).toString('base64');
  return { metadata, data: Buffer.from(payload.data ?? []).toString('base64') };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Runs the codec server until SIGINT or SIGTERM. */
export async function runCodecServer(config: Config): Promise<void> {
  if (config.codecKeys.length === 0) throw new ConfigError('OUTBOX_SYNC_CODEC_KEYS: codec-server needs at least one keyId=base64key pair');
  // The Temporal UI sends no token over plain http (and its own users' tokens over https), so on one's
  // own machine the server may run without tokens, answering whoever can reach the loopback address.
  const open = config.codecTokens.length === 0;
  if (open && !LOOPBACK.has(config.codecHost)) {
    throw new ConfigError(`OUTBOX_SYNC_CODEC_TOKENS: required when codec-server listens on ${config.codecHost}, beyond this machine`);
  }
  const logger = createLogger(config, 'codec-server');
  const app = buildCodecServer({
    codec: new AesGcmCodec(config.codecKeys),
    operatorTokens: config.codecTokens,
    otherTokens: config.ingestTokens,
    uiOrigin: new URL(config.temporalUiUrl).origin,
    onInternalError: (err) => logger.error({ error: (err as Error)?.message ?? String(err) }, 'request failed'),
  });
  const stopped = untilSignal();
  try {
    const address = await app.listen({ port: config.codecPort, host: config.codecHost });
    if (open) logger.warn('codec server answers anyone on this machine: set OUTBOX_SYNC_CODEC_TOKENS to require a token');
    logger.info({ endpoint: `${address}/codec`, keys: config.codecKeys.map((k) => k.id), uiOrigin: new URL(config.temporalUiUrl).origin }, 'codec server listening');
    await stopped;
  } finally {
    await app.close();
  }
  logger.info('codec server stopped');
}
