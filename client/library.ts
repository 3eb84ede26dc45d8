/** The library: what a producer imports to write messages into the outbox. */
export { enqueue, enqueueBatch, IdempotencyConflictError, type EnqueueOptions, type ProducerDb } from '../stores/outbox/enqueue';
export { InvalidMessageError, validateMessage, validateBatch, type MessageInput, type Op } from '../stores/outbox/validate';
export { MessageStatus } from '../stores/outbox/statuses';
