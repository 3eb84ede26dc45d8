/**
 * Search attributes that make every execution findable in the Temporal UI by its message, e.g. the query
 * `OutboxMessageId = "42"` or `OutboxEntity = "order" AND OutboxKey = "7"`. They are never encrypted, so
 * they hold identifiers only, never business data.
 */
import { defineSearchAttributeKey, SearchAttributeType, TypedSearchAttributes } from '@temporalio/common';

export const MESSAGE_ID = defineSearchAttributeKey('OutboxMessageId', SearchAttributeType.KEYWORD);
export const ENTITY = defineSearchAttributeKey('OutboxEntity', SearchAttributeType.KEYWORD);
export const ENTITY_KEY = defineSearchAttributeKey('OutboxKey', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [MESSAGE_ID, ENTITY, ENTITY_KEY] as const;

/** Keyword values are limited in size by the server; long keys are cut rather than refused. */
const MAX_KEYWORD_LENGTH = 200;

/**
 * The message id always; the entity and key unless `entityKey` is false, as with payload encryption on,
 * where they would otherwise be the one plaintext about the message left in the history.
 */
export function searchAttributesFor(message: { id: number; entity: string; key: string }, { entityKey = true } = {}): TypedSearchAttributes {
  return new TypedSearchAttributes([
    { key: MESSAGE_ID, value: String(message.id) },
    ...(entityKey
      ? [
          { key: ENTITY, value: message.entity.slice(0, MAX_KEYWORD_LENGTH) },
          { key: ENTITY_KEY, value: message.key.slice(0, MAX_KEYWORD_LENGTH) },
        ]
      : []),
  ]);
}
