/** The library: what a producer imports to write messages into the outbox. */
export { enqueue, enqueueBatch, IdempotencyConflictError, type EnqueueOptions, type Queryable } from '../outbox/enqueue';
export { InvalidMessageError, validateMessage, validateBatch, type MessageInput, type Op } from '../message/validate';
export { MessageStatus } from '../message/status';
