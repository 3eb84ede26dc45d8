/**
 * The outbox page's API as it travels: the JSON each route of ui-server.ts sends, which the front end
 * (servers/ui/web) reads. Types only, so the page imports them without bundling anything of the server;
 * and nothing here imports the stores, so the page's own type-check does not reach into server code.
 * ui-server.ts annotates its replies with these types and checks that the stored shapes it sends are,
 * once JSON, exactly these: a field added to one side and not the other fails to compile.
 */
import type { MessageStatus } from '../../stores/outbox/statuses';

export type { MessageStatus };

/**
 * A value as JSON.stringify sends it and JSON.parse gives it back: a Date becomes its ISO string
 * (toJSON), arrays and objects field by field, everything else as it is.
 */
export type Jsonified<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Jsonified<U>[]
    : T extends object
      ? { [K in keyof T]: Jsonified<T[K]> }
      : T;

/** GET /api/me: who is signed in, whether they may retry, and where Temporal's own UI is. */
export interface Me {
  name: string;
  canRetry: boolean;
  temporalUiUrl: string;
}

/** GET /api/status: counts per status, the age of the oldest pending message (0 when none is), the overdue ones. */
export interface OutboxStatus {
  counts: Record<MessageStatus, number>;
  oldestPendingSeconds: number;
  /** Pending, processing or failed past the SLA; 0 without one. */
  overdue: number;
  /** OUTBOX_SYNC_SLA_SECONDS; null: no SLA. */
  slaSeconds: number | null;
}

/** The newest `verify` run over every entity: when it ran and what it found. */
export interface VerifyRun {
  startedAt: string;
  finishedAt: string;
  /** Keys compared with the target. */
  checked: number;
  missing: number;
  stale: number;
  different: number;
  /** Messages `verify --repair` sent through the pipeline again; null for a run without --repair. */
  repaired: number | null;
  /** No key missing, stale or different. */
  passed: boolean;
}

/** GET /api/verify: the last verification; null before `verify` has run over every entity. */
export interface LastVerification {
  lastRun: VerifyRun | null;
}

export interface Latency {
  p50: number;
  p95: number;
  p99: number;
}

/** One minute of the last hour. */
export interface ActivityMinute {
  /** The minute's start, ISO 8601. */
  at: string;
  completed: number;
  /** Moves to failed or dead. */
  failed: number;
  /** Created → completed, of the messages completed in this minute; null when none was. */
  latencyMs: Latency | null;
}

/** GET /api/activity: the last 60 minutes, oldest first, quiet minutes as zeros. */
export interface Activity {
  minutes: ActivityMinute[];
}

/** A row of the list of messages. */
export interface MessageRow {
  id: number;
  source: string | null;
  entity: string;
  key: string;
  status: MessageStatus;
  attempts: number;
  lastError: string | null;
  lastErrorKind: 'transient' | 'permanent' | null;
  workflowId: string | null;
  createdAt: string;
  updatedAt: string;
  /** When it passed its SLA, once per sending; null if it has not. */
  overdueAt: string | null;
  /** The workflow in Temporal's UI; null before the message was first dispatched. */
  temporalUrl: string | null;
}

/** GET /api/messages: a page of the messages a filter matches, most recently changed first. */
export interface MessagePage {
  messages: MessageRow[];
  /** The `after` of the next page; null on the last one. */
  next: string | null;
  /** Every message the filter matches, on this page or any other. */
  total: number;
}

/** A stored message in full. */
export interface Message extends MessageRow {
  /** `upsert` or `delete`. */
  op: string;
  /** A bigint, as decimal digits. */
  version: string;
  data: unknown;
  idempotencyKey: string | null;
  availableAt: string;
  completedAt: string | null;
  /** Where its rows go: a mapped database and table, or TARGET_DATABASE_URL's synced_records. */
  target: { database: string; table: string };
}

/**
 * One change of a message's status; the first is its creation (from null to pending). `overdue` is not a
 * status: the moment the message passed its SLA, in the status `from` names, which it kept.
 */
export interface HistoryEntry {
  at: string;
  from: MessageStatus | null;
  to: MessageStatus | 'overdue';
  attempts: number;
  error: string | null;
  /** Who asked for it (`cli`, `ui:<name>`); null when the pipeline moved it. */
  actor: string | null;
}

/** One run of a message's workflow. */
export interface Execution {
  runId: string;
  /** RUNNING, COMPLETED, FAILED, TERMINATED, TIMED_OUT, … */
  status: string;
  startTime: string;
  closeTime: string | null;
  /** The run in Temporal's UI. */
  url: string;
}

/** GET /api/messages/:id: the message, its history (oldest first) and its runs (newest first). */
export interface MessageDetail {
  message: Message;
  history: HistoryEntry[];
  executions: Execution[];
  /** Why the runs cannot be shown (Temporal unreachable or not connected); null when they can. */
  executionsError: string | null;
}

/** POST /api/messages/:id/retry: the id, now pending again. */
export interface MessageRetried {
  retried: number[];
}

/** POST /api/retry: how many of the messages the filter matched went back to pending. */
export interface MatchingRetried {
  retried: number;
}
