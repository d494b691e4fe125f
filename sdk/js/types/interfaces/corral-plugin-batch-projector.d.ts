/// <reference path="./corral-plugin-types.d.ts" />
declare module 'corral:plugin/batch-projector@0.1.1' {
  /**
   * As `projector.key`.
   */
  export function key(event: Event): string | undefined;
  /**
   * As `projector.apply`. The host folds an event alone, in a fresh
   * instance, with `key` and `apply` when a batch fails on it; that
   * verdict is the one that counts.
   */
  export function apply(current: Uint8Array | undefined, event: Event): Uint8Array | undefined;
  /**
   * Folds the events encoded in `text` and `events`, in order. For each
   * event `i`: `batch.begin(i)` if a segment starts at `i`, then `key`;
   * if it names a view, its value (kept from an earlier write of this
   * batch, or from `batch.current(i, id)`), then `apply`. Every write
   * reaches the host with `batch.flush` before `fold` returns. Returns
   * the failure of the event that failed; the events before it stand
   * once their writes are flushed, and the host folds the others again.
   * 
   * The events are the fields of `types.event`, split in two: `text`
   * holds their strings back to back (`id`, `topic`, `tenant`,
   * `correlation-id`, then `traceparent` if any, of each event in turn);
   * `events` holds, for each event, `sequence` and `timestamp-ms` as u64,
   * the byte lengths in `text` of those five strings as u32 (0xffffffff
   * for a `traceparent` of none), then the payload's length as u32 and
   * its bytes. Integers are little-endian. Two lists cost two copies; a
   * `list<event>` costs an allocation in the guest per string.
   */
  export function fold(text: string, events: Uint8Array): void;
  export type Event = import('corral:plugin/types@0.1.1').Event;
  export type Failure = import('corral:plugin/types@0.1.1').Failure;
}
