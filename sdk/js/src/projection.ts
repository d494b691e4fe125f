// The `projection` world: `defineProjection` folds events into JSON views.
// Only `log` may be imported beside it: a projection is deterministic
// (its clock is the event's time, its randomness seeded by the event).

import type { Event as WitEvent } from 'corral:plugin/types@0.1.1';
import { Event } from './event.js';
import { failing } from './errors.js';
import { json, toBytes } from './codec.js';
import { descriptor, type Named } from './describe.js';

/** A projection plugin whose views are JSON values of type `V`. */
export interface ProjectionPlugin<V> extends Named {
  /** Topic patterns it folds. */
  topics: string[];
  /** The view an event concerns, or undefined to skip the event. */
  key(event: Event): string | undefined;
  /**
   * The view after `event`, given the view before it (undefined for a new
   * one); undefined deletes the view. Must be deterministic. Throwing
   * `Failure` quarantines the event (or halts the projection, as its
   * sidecar says).
   */
  apply(current: V | undefined, event: Event): V | undefined;
}

export { Event } from './event.js';
export { Failure } from './errors.js';

/** `export const { describe, projector } = defineProjection({ ... });` */
export function defineProjection<V>(plugin: ProjectionPlugin<V>) {
  return {
    describe: () => descriptor(plugin, { topics: [...plugin.topics] }),
    projector: {
      key: (event: WitEvent) => failing(() => plugin.key(new Event(event))),
      apply: (current: Uint8Array | undefined, event: WitEvent) =>
        failing(() => {
          const next = plugin.apply(current === undefined ? undefined : json<V>(current), new Event(event));
          return next === undefined ? undefined : toBytes(next);
        }),
    },
  };
}
