declare module 'corral:plugin/batch@0.1.1' {
  /**
   * Starts the segment of events from `index`: 0 first, then each index
   * the call before returned. Returns where the segment ends (one past
   * its last event; at least `index + 1`), where `begin` is due next.
   */
  export function begin(index: number): number;
  /**
   * The value of view `id` of the tenant of event `index`, which is in
   * the segment begun last: stored, or as the writes flushed so far left
   * it (none if there is no such view). Values written since the last
   * `flush` are the guest's to keep.
   */
  export function current(index: number, id: string): Uint8Array | undefined;
  /**
   * Hands over the writes of the events before event `through` that
   * were not flushed yet: for each view they wrote, its last write.
   * `through` covers every event flushed before and is at most the end
   * of the segment begun last; the writes take effect now, before any
   * later `current`. Once the batch ends, every event's writes must have
   * been flushed, and an event that failed flushes nothing of its own.
   */
  export function flush(writes: Array<Write>, through: number): void;
  /**
   * The last write of a batch to a view of one tenant: the index in the
   * batch of the event that wrote it (first; the view belongs to that
   * event's tenant), the view id (second) and its value (third; none
   * deletes the view).
   */
  export type Write = [number, string, Uint8Array | undefined];
}
