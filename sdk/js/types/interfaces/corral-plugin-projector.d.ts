/// <reference path="./corral-plugin-types.d.ts" />
declare module 'corral:plugin/projector@0.1.1' {
  /**
   * The id of the view this event updates; none skips the event.
   */
  export function key(event: Event): string | undefined;
  /**
   * Folds one event into the view's current value. Returns the new value,
   * or none to delete the view. Must be deterministic: an error or a trap
   * quarantines the event rather than retrying it.
   */
  export function apply(current: Uint8Array | undefined, event: Event): Uint8Array | undefined;
  export type Event = import('corral:plugin/types@0.1.1').Event;
  export type Failure = import('corral:plugin/types@0.1.1').Failure;
}
