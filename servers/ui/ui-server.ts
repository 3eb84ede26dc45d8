/**
 * The outbox page's server: the built single-page app (dist/ui/web, public: it holds no data) and the JSON
 * API it reads, every route of which needs a token (see ui/auth.ts).
 *
 *   POST/DELETE /api/session        sign in (token → cookie) / out
 *   GET  /api/me                    who is signed in, whether they may retry, the Temporal UI address
 *   GET  /api/status                counts per status, the oldest pending message, the overdue ones (as `status --json`)
 *   GET  /api/activity              the last hour by minute: completed, failed, latency percentiles
 *   GET  /api/verify                the last `verify` run over every entity: when, and what it found
 *   GET  /api/messages              filtered, newest first, a page at a time, with the total matching
 *   GET  /api/messages/:id          the message, its status history and its Temporal executions
 *   POST /api/messages/:id/retry    one failed or dead message back to pending (operators)
 *   POST /api/retry                 every failed or dead message a filter matches (operators)
 *
 * Any other GET that is not a file is the app's own route (/messages/42): it gets index.html.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type pg from 'pg';
import { z } from 'zod';
import type { Config } from '../../config/config';
import { packageRoot } from '../../config/package-root';
import { HttpError, installErrorReplies, noRoute } from '../http/errors';
import { ALL_STATUSES, MessageStatus } from '../../stores/outbox/state-machine';
import type { MessageFilter } from '../../stores/outbox/filter';
import { publicMessage, readMessage, readStatus, type OutboxStatus } from '../../stores/outbox/messages';
import { placementOf, type Placement } from '../../stores/target/mapping';
import { retryMessages } from '../../stores/outbox/state-machine';
import { readLastVerifyRun, type VerifyRun } from '../../stores/outbox/verify-runs';
import {
  InvalidCursorError,
  listMessages,
  readActivity,
  readHistory,
  type ActivityMinute,
  type HistoryEntry,
  type MessageSummary,
} from '../../stores/outbox/views';
import type { Execution } from '../../temporal/executions';
import { runUrl, workflowUrl } from '../../temporal/ui-links';
import { canAct, installUiAuth, operatorsOnly } from './auth';
import type * as wire from './wire';

export type UiSettings = Pick<Config, 'uiTokens' | 'uiOperators' | 'temporalUiUrl' | 'temporalNamespace' | 'targets' | 'slaSeconds'>;

export interface UiStores {
  outbox: pg.Pool;
}

export interface UiLogger {
  info(fields: object, message: string): void;
  warn(message: string): void;
  error(fields: object, message: string): void;
}

export interface UiOptions {
  /** The runs of a workflow id (Temporal visibility); without it the page says executions are unavailable. */
  executions?: (workflowId: string) => Promise<Execution[]>;
  /** How long a message's page waits for Temporal before showing it without its executions. */
  executionsTimeoutMs?: number;
  /** The built front end; dist/ui/web by default. */
  webRoot?: string;
  logger?: UiLogger;
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const NOT_BUILT = 'The outbox page was not built: run npm run build\n';

export function buildUiServer(stores: UiStores, config: UiSettings, options: UiOptions = {}): FastifyInstance {
  const logger: UiLogger = options.logger ?? { info: () => undefined, warn: (message) => console.error(message), error: (fields, message) => console.error(message, fields) };
  const webRoot = options.webRoot ?? join(packageRoot, 'dist', 'ui', 'web');
  const built = existsSync(join(webRoot, 'index.html'));
  const app = Fastify({ logger: false, return503OnClosing: true, bodyLimit: 64 * 1024 });

  app.addHook('onSend', async (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    // The API's answers are about live data, and some of it is not for shared caches.
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
  });

  installErrorReplies(app, {
    onInternalError: (err) => logger.error({ error: (err as Error)?.message ?? String(err) }, 'request failed'),
    notFound: (request, reply) => pageRoute(request, reply, built),
    needs: 'the outbox database',
    onUnavailable: (reason) => logger.warn(reason),
  });

  if (built) {
    app.register(fastifyStatic, {
      root: webRoot,
      // Vite names what it builds under assets/ by content hash: such a file never changes.
      setHeaders: (reply, path) => reply.header('cache-control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache'),
    });
  }

  app.register(
    async (api) => {
      await installUiAuth(api, config);
      const mayAct = operatorsOnly(config);

      api.get('/me', async (request): Promise<wire.Me> => ({
        name: request.operator,
        canRetry: canAct(config, request.operator),
        temporalUiUrl: config.temporalUiUrl,
      }));

      api.get('/status', async (): Promise<wire.OutboxStatus> => readStatus(stores.outbox, { slaSeconds: config.slaSeconds }));

      api.get('/activity', async (): Promise<wire.Activity> => ({
        minutes: (await readActivity(stores.outbox)).map((m) => ({ ...m, at: m.at.toISOString() })),
      }));

      api.get('/verify', async (): Promise<wire.LastVerification> => {
        const run = await readLastVerifyRun(stores.outbox);
        if (!run) return { lastRun: null };
        // A run over every entity: its entity (null) says nothing.
        const { startedAt, finishedAt, checked, missing, stale, different, repaired, passed } = run;
        return { lastRun: { startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), checked, missing, stale, different, repaired, passed } };
      });

      api.get('/messages', async (request): Promise<wire.MessagePage> => {
        const query = parse(listQuery, request.query);
        let page;
        try {
          page = await listMessages(stores.outbox, filterOf(query), { after: query.after, limit: query.limit });
        } catch (err) {
          if (err instanceof InvalidCursorError) throw new HttpError(400, `after: ${err.message}`, 'after');
          throw err;
        }
        return {
          messages: page.messages.map((m) => ({
            ...m,
            createdAt: m.createdAt.toISOString(),
            updatedAt: m.updatedAt.toISOString(),
            overdueAt: m.overdueAt?.toISOString() ?? null,
            temporalUrl: m.workflowId ? workflowUrl(config, m.workflowId) : null,
          })),
          next: page.next,
          total: page.total,
        };
      });

      api.get<{ Params: { id: string } }>('/messages/:id', async (request): Promise<wire.MessageDetail> => {
        const id = parseId(request.params.id);
        const message = await readMessage(stores.outbox, id);
        if (!message) throw new HttpError(404, `no message ${id}`);
        const [history, executions] = await Promise.all([
          readHistory(stores.outbox, id),
          message.workflowId ? executionsOf(message.workflowId) : Promise.resolve({ executions: [], executionsError: null }),
        ]);
        const shown = publicMessage(message);
        return {
          message: {
            ...shown,
            availableAt: shown.availableAt.toISOString(),
            createdAt: message.createdAt.toISOString(),
            updatedAt: message.updatedAt.toISOString(),
            completedAt: message.completedAt?.toISOString() ?? null,
            overdueAt: message.overdueAt?.toISOString() ?? null,
            temporalUrl: message.workflowId ? workflowUrl(config, message.workflowId) : null,
            target: placementOf(config.targets, message.entity),
          },
          history: history.map((h) => ({ ...h, at: h.at.toISOString() })),
          ...executions,
        };
      });

      api.post<{ Params: { id: string } }>('/messages/:id/retry', { preHandler: mayAct }, async (request): Promise<wire.MessageRetried> => {
        const id = parseId(request.params.id);
        const actor = `ui:${request.operator}`;
        const retried = await retryMessages(stores.outbox, { ids: [id] }, { actor });
        if (retried.length === 0) {
          const message = await readMessage(stores.outbox, id);
          if (!message) throw new HttpError(404, `no message ${id}`);
          throw new HttpError(409, `message ${id} is ${message.status}: only failed or dead messages can be retried`);
        }
        logger.info({ actor, count: retried.length, filter: { ids: [id] } }, 'retry');
        return { retried };
      });

      api.post('/retry', { preHandler: mayAct }, async (request): Promise<wire.MatchingRetried> => {
        const filter = filterOf(parse(retryBody, request.body ?? {}));
        const actor = `ui:${request.operator}`;
        const retried = await retryMessages(stores.outbox, { filter }, { actor });
        logger.info({ actor, count: retried.length, filter }, 'retry');
        return { retried: retried.length };
      });
    },
    { prefix: '/api' },
  );

  /** The executions of a workflow id, or why they cannot be shown; never fails the page. */
  async function executionsOf(workflowId: string): Promise<Pick<wire.MessageDetail, 'executions' | 'executionsError'>> {
    if (!options.executions) return { executions: [], executionsError: 'Temporal is not connected to this server' };
    const timeoutMs = options.executionsTimeoutMs ?? 5_000;
    let timer: NodeJS.Timeout | undefined;
    const listed = options.executions(workflowId);
    try {
      const runs = await Promise.race([
        listed,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`Temporal did not answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      const executions = runs.map((run): wire.Execution => ({
        runId: run.runId,
        status: run.status,
        startTime: run.startTime.toISOString(),
        closeTime: run.closeTime?.toISOString() ?? null,
        url: runUrl(config, workflowId, run.runId),
      }));
      return { executions, executionsError: null };
    } catch (err) {
      listed.catch(() => undefined);
      return { executions: [], executionsError: `Temporal cannot be reached: ${((err as Error)?.message ?? String(err)).split('\n')[0]}` };
    } finally {
      clearTimeout(timer);
    }
  }

  return app;
}

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Holds<T extends true> = T;

/**
 * What the routes above send is what the page reads: each stored shape, as JSON and with the links the
 * routes add, has exactly the fields of its type in wire.ts. A field added to or dropped from one side
 * and not the other fails to compile here.
 */
export type RepliesMatchWire = [
  Holds<Same<wire.Jsonified<OutboxStatus>, wire.OutboxStatus>>,
  Holds<Same<wire.Jsonified<ActivityMinute>, wire.ActivityMinute>>,
  Holds<Same<wire.Jsonified<Omit<VerifyRun, 'entity'>>, wire.VerifyRun>>,
  Holds<Same<wire.Jsonified<MessageSummary> & { temporalUrl: string | null }, wire.MessageRow>>,
  Holds<Same<wire.Jsonified<ReturnType<typeof publicMessage>> & { temporalUrl: string | null; target: Placement }, wire.Message>>,
  Holds<Same<wire.Jsonified<HistoryEntry>, wire.HistoryEntry>>,
  Holds<Same<wire.Jsonified<Execution> & { url: string }, wire.Execution>>,
];

/** A GET for a page of the app gets index.html (or 503 when the app was not built); anything else 404. */
async function pageRoute(request: FastifyRequest, reply: FastifyReply, built: boolean) {
  const path = request.url.split('?')[0]!;
  const isPage = (request.method === 'GET' || request.method === 'HEAD') && !/^\/api(\/|$)/.test(path) && !/^\/assets\//.test(path) && !/\.[^/]*$/.test(path);
  if (!isPage) return noRoute(request, reply);
  if (!built) return reply.code(503).type('text/plain; charset=utf-8').send(NOT_BUILT);
  return reply.header('cache-control', 'no-cache').sendFile('index.html');
}

/** Text, where empty or null (a cleared field of a form) means no condition. */
const optionalText = (max: number) =>
  z
    .string()
    .max(max, `must be at most ${max} characters`)
    .nullish()
    .transform((value) => (value === '' || value === null ? undefined : value));

const statusList = (allowed: readonly MessageStatus[]) =>
  z
    .string()
    .nullish()
    .transform((value, ctx) => {
      const statuses = (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (statuses.length === 0) return [MessageStatus.failed, MessageStatus.dead];
      const bad = statuses.find((s) => !allowed.includes(s as MessageStatus));
      if (bad !== undefined) {
        ctx.addIssue({ code: 'custom', message: `"${bad}" is not one of ${allowed.join(', ')}` });
        return z.NEVER;
      }
      return [...new Set(statuses)] as MessageStatus[];
    });

const filterFields = {
  entity: optionalText(200),
  key: optionalText(1000),
  source: optionalText(200),
  error: optionalText(1000),
};

const listQuery = z.object({
  status: statusList(ALL_STATUSES),
  ...filterFields,
  after: optionalText(200),
  limit: z
    .string()
    .optional()
    .transform((value) => (value === undefined || value === '' ? 50 : /^[0-9]{1,4}$/.test(value) ? Number(value) : NaN))
    .pipe(z.number({ error: 'must be an integer from 1 to 200' }).int().min(1, 'must be an integer from 1 to 200').max(200, 'must be an integer from 1 to 200')),
});

// Only failed and dead messages can be retried: a filter naming another status would match nothing anyway.
const retryBody = z.object({ status: statusList([MessageStatus.failed, MessageStatus.dead]), ...filterFields }, { error: 'the body must be a JSON object' });

function filterOf(query: { status: MessageStatus[]; entity?: string; key?: string; source?: string; error?: string }): MessageFilter {
  const { status, entity, key, source, error } = query;
  return { statuses: status, ...(entity && { entity }), ...(key && { key }), ...(source && { source }), ...(error && { error }) };
}

/** Query or body values by the schema; a bad one is a 400 that names it. */
function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') || undefined;
  const reason = issue?.code === 'invalid_type' && issue.expected === 'string' ? 'must be text' : (issue?.message ?? 'is not valid');
  throw new HttpError(400, field ? `${field}: ${reason}` : reason, field);
}

function parseId(text: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new HttpError(400, `id: "${text}" is not a message id (a positive integer up to ${Number.MAX_SAFE_INTEGER})`, 'id');
  }
  return Number(text);
}
