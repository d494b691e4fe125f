// `corral:plugin/carts`: mutating and reading carts of the caller's tenant
// through their plugin's mailbox, payloads and states as JSON. Throws
// `CartError`; 'unavailable' means retry with the same idempotency key.

import * as wit from 'corral:plugin/carts@0.1.1';
import { CartError, calling } from './errors.js';
import { json, toBytes, toNumber } from './codec.js';

/** A cart's state at a version. */
export interface CartState<S> {
  version: number;
  state: S;
}

/** A mutation once durable: the cart's version and state after it, and its events' sequences. */
export interface Applied<S> extends CartState<S> {
  events: number[];
}

/** The carts of one cart plugin (granted in the sidecar: `[carts] plugins = ["NAME"]`). */
export class Carts<S = unknown> {
  constructor(readonly plugin: string) {}

  /** Applies mutation `kind` to cart `id`; with an idempotency key, a repeat applies nothing and answers the first's result. */
  mutate(id: string, kind: string, payload: unknown, options: { idempotencyKey?: string } = {}): Applied<S> {
    const applied = calling(
      () => wit.mutate(this.plugin, id, kind, toBytes(payload), options.idempotencyKey),
      (e) => new CartError('carts', e),
    );
    return {
      version: toNumber(applied.version),
      state: json<S>(applied.state),
      events: Array.from(applied.events, toNumber),
    };
  }

  /** Cart `id`'s state, or undefined for a cart never mutated. */
  get(id: string): CartState<S> | undefined {
    const found = calling(() => wit.get(this.plugin, id), (e) => new CartError('carts', e));
    return found === undefined ? undefined : { version: toNumber(found.version), state: json<S>(found.state) };
  }
}

/** The carts of cart plugin `plugin`. */
export function carts<S = unknown>(plugin: string): Carts<S> {
  return new Carts<S>(plugin);
}
