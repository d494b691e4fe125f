// `corral:plugin/emit`: payloads as JSON (or text, or bytes). Both throw
// `EmitError` when the event is refused.

import * as wit from 'corral:plugin/emit@0.1.1';
import { EmitError, calling } from './errors.js';
import { toBytes, toNumber } from './codec.js';

/**
 * Appends an event now and returns its sequence once durable. It stays
 * published whatever the call does next: prefer `emitOnSuccess`.
 */
export function emit(topic: string, payload: unknown): number {
  return toNumber(calling(() => wit.publish(topic, toBytes(payload)), (e) => new EmitError('emit', e)));
}

/**
 * Queues an event, published only if the call succeeds (for an event
 * handler, with its checkpoint): a failed or retried call publishes nothing.
 */
export function emitOnSuccess(topic: string, payload: unknown): void {
  calling(() => wit.publishOnSuccess(topic, toBytes(payload)), (e) => new EmitError('emit', e));
}
