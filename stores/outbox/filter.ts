/**
 * Which messages an operator means: the outbox page's list and its "retry all" take the same filter, so
 * what is retried is exactly what was shown. Values are always bound parameters, never SQL text.
 */
import type { MessageStatus } from './state-machine';

export interface MessageFilter {
  /** Any of these statuses (at least one). */
  statuses: readonly MessageStatus[];
  /** Exact matches. */
  entity?: string;
  key?: string;
  source?: string;
  /** A case-insensitive substring of the last error. */
  error?: string;
}

/**
 * The filter as a WHERE condition over `outbox_messages`, its values appended to `params` (so that the
 * caller may have bound some before).
 */
export function filterCondition(filter: MessageFilter, params: unknown[]): string {
  const bind = (value: unknown) => `$${params.push(value)}`;
  const conditions = [`status = ANY(${bind(filter.statuses)}::text[])`];
  if (filter.entity !== undefined) conditions.push(`entity = ${bind(filter.entity)}`);
  if (filter.key !== undefined) conditions.push(`entity_key = ${bind(filter.key)}`);
  if (filter.source !== undefined) conditions.push(`source = ${bind(filter.source)}`);
  // strpos rather than ILIKE: the text is matched as it is, % and _ included.
  if (filter.error !== undefined) conditions.push(`strpos(lower(last_error), lower(${bind(filter.error)})) > 0`);
  return conditions.join(' AND ');
}
