// Errors a plugin throws and catches, as classes to branch on with
// `instanceof` and a `kind` to switch on.
//
// An import that fails (kv, emit, views, carts) throws the error class of
// its interface, whose `kind` is the WIT variant's name ('not-a-counter',
// 'unavailable', ...). A handler fails on purpose by throwing `Failure`
// (events, projections, carts) or `HttpError` (routes); the world helpers
// turn both into what the host expects. Anything else thrown traps the call.

import type { KvError as WitKvError } from 'corral:plugin/kv@0.1.1';
import type { EmitError as WitEmitError } from 'corral:plugin/emit@0.1.1';
import type { ViewsError as WitViewsError, QueryError as WitQueryError } from 'corral:plugin/views@0.1.1';
import type { CartError as WitCartError } from 'corral:plugin/carts@0.1.1';

/** A WIT error variant: its tag and, for most, a detail. */
interface Variant {
  tag: string;
  val?: unknown;
}

/** What every error of an import shares. */
export abstract class CorralError<K extends string = string> extends Error {
  /** The WIT variant's name. */
  readonly kind: K;
  /** The variant's detail: a reason, or a limit in bytes for `too-large`. */
  readonly detail: string | number | undefined;

  /** The interface that failed: 'kv', 'emit', 'views' or 'carts'. */
  readonly interface: string;

  constructor(iface: string, variant: Variant) {
    const detail = typeof variant.val === 'bigint' ? Number(variant.val) : (variant.val as string | undefined);
    super(detail === undefined ? `${iface}: ${variant.tag}` : `${iface}: ${variant.tag}: ${detail}`);
    this.interface = iface;
    this.kind = variant.tag as K;
    this.detail = detail;
  }

  /** The failure code this error becomes when a handler does not catch it: `kv.not-a-counter`. */
  get code(): string {
    return `${this.interface}.${this.kind}`;
  }
}

/** A kv call failed: 'access-denied', 'invalid-key', 'too-large', 'not-a-counter' or 'unavailable'. */
export class KvError extends CorralError<WitKvError['tag']> {
  override name = 'KvError';
}

/** An event was not appended: 'invalid-topic', 'too-large' or 'unavailable'. */
export class EmitError extends CorralError<WitEmitError['tag']> {
  override name = 'EmitError';
}

/** A view read failed: 'no-such-projection' or 'unavailable'; a query also 'invalid' or 'too-broad'. */
export class ViewsError extends CorralError<WitViewsError['tag'] | WitQueryError['tag']> {
  override name = 'ViewsError';
}

/**
 * A cart call failed: 'no-such-cart-plugin', 'not-granted', 'unknown-kind',
 * 'invalid', 'rejected' (the cart refused: `detail` is `code: message`),
 * 'failed' or 'unavailable' (retry with the same idempotency key).
 */
export class CartError extends CorralError<WitCartError['tag']> {
  override name = 'CartError';
}

/**
 * A handler's deliberate failure: an event is retried then dead-lettered,
 * a projection's event quarantined, a cart mutation refused — each recorded
 * with this code and message.
 */
export class Failure extends Error {
  override name = 'Failure';

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A route's deliberate error answer: `{ "error": code, "message": ... }` with this status. */
export class HttpError extends Error {
  override name = 'HttpError';

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Calls an import, turning the error it throws (a `payload` holding the WIT
 * variant) into `make(variant)`.
 */
export function calling<T>(call: () => T, make: (variant: Variant) => Error): T {
  try {
    return call();
  } catch (error) {
    const payload = (error as { payload?: Variant } | null)?.payload;
    if (payload && typeof payload.tag === 'string') {
      throw make(payload);
    }
    throw error;
  }
}

/**
 * Runs a handler of a world whose export returns `result<_, failure>`: a
 * `Failure` or an uncaught import error becomes the plain `{ code, message }`
 * the host records; anything else traps.
 */
export function failing<T>(handler: () => T): T {
  try {
    return handler();
  } catch (error) {
    if (error instanceof Failure || error instanceof CorralError) {
      throw { code: error.code, message: error.message };
    }
    throw error;
  }
}
