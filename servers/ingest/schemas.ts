/**
 * The ingest routes' requests and replies as JSON Schemas, every status a route answers included: the
 * OpenAPI document (openapi.ts) is generated from them, and Fastify serializes each reply through its
 * schema. A reply field missing here would be dropped from the answer, so each one lists every field.
 *
 * The request schemas describe; they do not validate: a message is checked by stores/outbox/validate.ts,
 * the validator the library and the CLI use, so that it is refused in the same words on every channel.
 * The limits below are that module's.
 */
import type { FastifySchema } from 'fastify';
import { ALL_STATUSES } from '../../stores/outbox/statuses';
import {
  DEFAULT_MAX_DATA_BYTES,
  MAX_BATCH,
  MAX_DATA_DEPTH,
  MAX_ENTITY_LENGTH,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MAX_KEY_LENGTH,
  MAX_SOURCE_LENGTH,
  MAX_VERSION,
} from '../../stores/outbox/validate';
import { ERROR_BODY_SCHEMA } from '../http/errors';

/** The name of the bearer-token scheme in the document's components.securitySchemes. */
export const BEARER = 'deviceToken';

/** Schemas shared by $id; each becomes one entry of the document's components.schemas. */
export const SHARED_SCHEMAS = [
  ERROR_BODY_SCHEMA,
  {
    $id: 'Message',
    type: 'object',
    description: 'A business message. Its source is the token\'s: naming another one is refused (403).',
    required: ['entity', 'key'],
    additionalProperties: false,
    properties: {
      entity: { type: 'string', minLength: 1, maxLength: MAX_ENTITY_LENGTH, description: 'what the message is about (`order`); no control characters' },
      key: { type: 'string', minLength: 1, maxLength: MAX_KEY_LENGTH, description: 'which one (`42`); no control characters' },
      op: { type: 'string', enum: ['upsert', 'delete'], default: 'upsert' },
      version: {
        description: `monotonic per (entity, key), 0 to ${MAX_VERSION}, as a JSON number or a decimal string; defaults to the message id`,
        anyOf: [
          { type: 'integer', minimum: 0 },
          { type: 'string', pattern: '^(0|[1-9][0-9]{0,18})$' },
        ],
      },
      data: {
        type: 'object',
        description:
          `the entity's whole state: required for an upsert, omitted for a delete; at most OUTBOX_SYNC_MAX_DATA_BYTES ` +
          `(${DEFAULT_MAX_DATA_BYTES} by default) as JSON, ${MAX_DATA_DEPTH} levels deep, no NUL character`,
      },
      idempotencyKey: {
        type: 'string',
        minLength: 1,
        maxLength: MAX_IDEMPOTENCY_KEY_LENGTH,
        description: 'unique per source: the same key with the same body answers the first id, with another body 409',
      },
      source: { type: 'string', minLength: 1, maxLength: MAX_SOURCE_LENGTH, description: 'optional; must be the source the token names' },
    },
  },
  {
    $id: 'MessageStatus',
    type: 'object',
    description: 'A message as the outbox holds it now, without its data.',
    additionalProperties: false,
    required: ['id', 'source', 'entity', 'key', 'op', 'version', 'target', 'status', 'attempts', 'lastError', 'workflowId', 'temporalUi', 'createdAt', 'updatedAt', 'completedAt', 'overdueAt'],
    properties: {
      id: { type: 'integer', minimum: 1 },
      source: { type: 'string' },
      entity: { type: 'string' },
      key: { type: 'string' },
      op: { type: 'string', enum: ['upsert', 'delete'] },
      version: { type: 'string', pattern: '^[0-9]+$', description: 'a decimal string: versions run past 2^53' },
      target: {
        type: 'object',
        description: 'where the message is written: a database named in OUTBOX_SYNC_TARGETS (or TARGET_DATABASE_URL) and its table',
        additionalProperties: false,
        required: ['database', 'table'],
        properties: { database: { type: 'string' }, table: { type: 'string' } },
      },
      status: { type: 'string', enum: [...ALL_STATUSES] },
      attempts: { type: 'integer', minimum: 0, description: 'executions of the message so far' },
      lastError: { type: ['string', 'null'], description: 'why the last execution failed' },
      workflowId: { type: ['string', 'null'], description: 'its Temporal workflow, once one started' },
      temporalUi: { type: ['string', 'null'], format: 'uri', description: 'the workflow in the Temporal UI' },
      createdAt: { type: 'string', format: 'date-time' },
      updatedAt: { type: 'string', format: 'date-time' },
      completedAt: { type: ['string', 'null'], format: 'date-time' },
      overdueAt: { type: ['string', 'null'], format: 'date-time', description: 'when it passed the SLA (OUTBOX_SYNC_SLA_SECONDS), once per sending; null if it has not' },
    },
  },
] as const;

const ref = (id: string) => ({ $ref: `${id}#` });

const refusal = (description: string, headers?: Record<string, { type: 'string' | 'integer'; description: string }>) => ({
  description,
  ...ref('ErrorBody'),
  ...(headers ? { headers } : {}),
});

const UNAUTHORIZED = refusal('No bearer token, or one INGEST_TOKENS does not hold; checked before the body is read.', {
  'WWW-Authenticate': { type: 'string', description: '`Bearer`' },
});
const OUTBOX_DOWN = refusal('The outbox database does not answer; nothing was stored.', {
  'Retry-After': { type: 'integer', description: 'seconds to wait before repeating the request' },
});

export const POST_MESSAGES: FastifySchema = {
  operationId: 'postMessages',
  summary: 'Store one message, or a batch all or none',
  description: 'Answered after the commit. A batch is stored all or none.',
  tags: ['messages'],
  security: [{ [BEARER]: [] }],
  body: {
    oneOf: [ref('Message'), { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: ref('Message'), description: 'a batch, stored all or none' }],
  },
  response: {
    202: {
      description: 'Stored: the id of the message, or of each message of the batch in the order given.',
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['id'], properties: { id: { type: 'integer', minimum: 1 } } },
        { type: 'object', additionalProperties: false, required: ['ids'], properties: { ids: { type: 'array', items: { type: 'integer', minimum: 1 } } } },
      ],
    },
    400: refusal('The body is not valid JSON (or UTF-8), or a message is invalid: the reason names the field, as the library and the CLI do.'),
    401: UNAUTHORIZED,
    403: refusal('A message names a source other than the token\'s.'),
    409: refusal('An idempotency key this source used before, with a different body.'),
    413: refusal('The body is larger than INGEST_MAX_BODY_BYTES.'),
    415: refusal('The Content-Type is not application/json, or there is none.'),
    503: OUTBOX_DOWN,
  },
};

export const GET_MESSAGE: FastifySchema = {
  operationId: 'getMessage',
  summary: 'A message\'s status, attempts, last error and workflow',
  tags: ['messages'],
  security: [{ [BEARER]: [] }],
  params: {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,15}$', description: 'the message id' } },
  },
  response: {
    200: { description: 'The message, without its data.', ...ref('MessageStatus') },
    400: refusal('The id is not a message id.'),
    401: UNAUTHORIZED,
    403: refusal('The message belongs to another source (or, inserted with plain SQL, to none).'),
    404: refusal('No message has that id.'),
    503: OUTBOX_DOWN,
  },
};

/** The health reply, its status fixed to the one its code says. */
const health = (status: 'ok' | 'unavailable', description: string) => ({
  description,
  type: 'object',
  additionalProperties: false,
  required: ['status', 'checks'],
  properties: {
    status: { type: 'string', enum: [status] },
    checks: {
      type: 'object',
      additionalProperties: false,
      required: ['outbox'],
      properties: { outbox: { type: 'string', description: '`ok`, or `down: <reason>`' } },
    },
  },
});

export const HEALTHZ: FastifySchema = {
  operationId: 'getHealth',
  summary: 'Whether the outbox database answers (within 2 s)',
  tags: ['operations'],
  response: {
    200: health('ok', 'The outbox database answers.'),
    503: health('unavailable', 'The outbox database does not answer: `checks.outbox` says why.'),
  },
};

export const METRICS: FastifySchema = {
  operationId: 'getMetrics',
  summary: 'Prometheus metrics (prom-client\'s default registry)',
  tags: ['operations'],
  response: {
    200: {
      description: 'The Prometheus text exposition format, version 0.0.4.',
      content: { 'text/plain': { schema: { type: 'string' } } },
    },
  },
};
