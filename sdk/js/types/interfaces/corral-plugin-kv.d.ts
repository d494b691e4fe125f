declare module 'corral:plugin/kv@0.1.1' {
  /**
   * Reads a value.
   */
  export function get(bucket: string, key: string): Uint8Array | undefined;
  /**
   * Writes a value, replacing any previous one.
   */
  export function set(bucket: string, key: string, value: Uint8Array): void;
  /**
   * Deletes a key; true if it existed.
   */
  export { _delete as delete };
  function _delete(bucket: string, key: string): boolean;
  /**
   * Lists entries whose key starts with `prefix`, after `cursor`, at most
   * `limit` of them (the host caps the limit).
   */
  export function list(bucket: string, prefix: string, cursor: string | undefined, limit: number): Page;
  /**
   * Adds `delta` to the counter at `key` (absent counts as 0) and returns
   * the new value. Counters are stored as decimal ASCII.
   */
  export function increment(bucket: string, key: string, delta: bigint): bigint;
  /**
   * Sets `key` to `new` (none deletes it) only if its current value equals
   * `expected` (none meaning absent). True if the swap happened.
   */
  export function compareAndSwap(bucket: string, key: string, expected: Uint8Array | undefined, new_: Uint8Array | undefined): boolean;
  /**
   * Why a kv operation failed.
   */
  export type KvError = KvErrorAccessDenied | KvErrorInvalidKey | KvErrorTooLarge | KvErrorNotACounter | KvErrorUnavailable;
  /**
   * The bucket is not granted to this plugin.
   */
  export interface KvErrorAccessDenied {
    tag: 'access-denied',
    val: string,
  }
  /**
   * The key is empty or longer than the host's limit.
   */
  export interface KvErrorInvalidKey {
    tag: 'invalid-key',
    val: string,
  }
  /**
   * The value exceeds the host's limit (the limit in bytes).
   */
  export interface KvErrorTooLarge {
    tag: 'too-large',
    val: bigint,
  }
  /**
   * `increment` on a value that is not a decimal signed 64-bit integer,
   * or one that would overflow.
   */
  export interface KvErrorNotACounter {
    tag: 'not-a-counter',
  }
  /**
   * The backend failed; the operation may be retried.
   */
  export interface KvErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
  /**
   * One stored entry.
   */
  export interface Entry {
    key: string,
    value: Uint8Array,
  }
  /**
   * A page of a listing, in key order.
   */
  export interface Page {
    entries: Array<Entry>,
    /**
     * Pass back as `cursor` to get the next page; none when done.
     */
    nextCursor?: string,
  }
}
