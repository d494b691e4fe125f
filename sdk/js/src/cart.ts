// The `cart` world: `defineCart` applies mutations to a JSON state, one
// writer per cart. Only `log` may be imported beside it: a cart is
// deterministic, and its journal is replayed through `apply`.

import type { Mutation as WitMutation } from 'corral:plugin/types@0.1.1';
import { failing } from './errors.js';
import { json, toBytes, toNumber } from './codec.js';
import { descriptor, type Named } from './describe.js';

/** One mutation, its payload parsed as JSON. */
export interface Mutation<P = unknown> {
  /** Unique id (the idempotency key when the caller gave one). */
  id: string;
  /** The cart's id. */
  entity: string;
  /** One of the kinds the cart declares. */
  kind: string;
  /** When it was accepted, in ms since the Unix epoch (the cart's clock). */
  timestampMs: number;
  payload: P;
}

/** What a mutation leaves: the new state, and events published once it is durable. */
export interface Applied<S> {
  state: S;
  events?: Array<{ topic: string; payload: unknown }>;
}

/** A cart plugin whose state is a JSON value of type `S`. */
export interface CartPlugin<S> extends Named {
  /** The mutation kinds it accepts; the host refuses others. */
  kinds: string[];
  /** The state of a cart never mutated. */
  initial(): S;
  /**
   * Applies one mutation. Throwing `Failure` refuses it: the caller gets
   * the code and message, and nothing changes. Must be deterministic.
   */
  apply(state: S, mutation: Mutation): Applied<S>;
}

export { Failure } from './errors.js';

/** `export const { describe, stateMachine } = defineCart({ ... });` */
export function defineCart<S>(plugin: CartPlugin<S>) {
  return {
    describe: () => descriptor(plugin, { mutationKinds: [...plugin.kinds] }),
    stateMachine: {
      apply: (state: Uint8Array | undefined, mutation: WitMutation) =>
        failing(() => {
          const current = state === undefined ? plugin.initial() : json<S>(state);
          const applied = plugin.apply(current, {
            id: mutation.id,
            entity: mutation.entity,
            kind: mutation.kind,
            timestampMs: toNumber(mutation.timestampMs),
            payload: mutation.payload.length === 0 ? undefined : json(mutation.payload),
          });
          return {
            state: toBytes(applied.state),
            events: (applied.events ?? []).map((e) => ({ topic: e.topic, payload: toBytes(e.payload) })),
          };
        }),
    },
  };
}
