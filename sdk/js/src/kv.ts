// `corral:plugin/kv`, with values as JSON (or text, or bytes when asked)
// and counters as numbers. `kv` is the plugin's own bucket; `bucket(name)`
// reaches one the sidecar grants. Every call throws `KvError` on failure.

import * as wit from 'corral:plugin/kv@0.1.1';
import { KvError, calling } from './errors.js';
import { json, text, toBytes, toNumber } from './codec.js';

/** One page of a listing, in key order. */
export interface Page<T> {
  entries: Array<{ key: string; value: T }>;
  /** Pass back as `cursor` for the next page; undefined when done. */
  nextCursor: string | undefined;
}

/** Where a listing starts and how much of it to return. */
export interface ListOptions {
  cursor?: string;
  /** At most this many entries (the host caps it); 100 unless told. */
  limit?: number;
}

/** A kv bucket. */
export class Bucket {
  constructor(
    /** The bucket's name; '' is the plugin's own. */
    readonly name: string,
  ) {}

  /** The value at `key` parsed as JSON, or undefined. */
  get<T = unknown>(key: string): T | undefined {
    const bytes = this.getBytes(key);
    return bytes === undefined ? undefined : json<T>(bytes);
  }

  /** The value at `key` as text, or undefined. */
  getText(key: string): string | undefined {
    const bytes = this.getBytes(key);
    return bytes === undefined ? undefined : text(bytes);
  }

  /** The value at `key` as bytes, or undefined. */
  getBytes(key: string): Uint8Array | undefined {
    return calling(() => wit.get(this.name, key), (e) => new KvError('kv', e));
  }

  /** Stores `value`: bytes as they are, a string as UTF-8, anything else as JSON. */
  set(key: string, value: unknown): void {
    calling(() => wit.set(this.name, key, toBytes(value)), (e) => new KvError('kv', e));
  }

  /** Deletes `key`; true if it existed. */
  delete(key: string): boolean {
    return calling(() => wit.delete(this.name, key), (e) => new KvError('kv', e));
  }

  /** Adds `by` to the counter at `key` (absent counts as 0) and returns the new value. */
  increment(key: string, by = 1): number {
    return toNumber(this.incrementBig(key, BigInt(by)));
  }

  /** `increment` for counters past 2^53. */
  incrementBig(key: string, by: bigint): bigint {
    return calling(() => wit.increment(this.name, key, by), (e) => new KvError('kv', e));
  }

  /**
   * Sets `key` to `next` (undefined deletes it) only if its value is
   * `expected` (undefined: absent), comparing the stored bytes with
   * `expected` encoded as `set` encodes. True if the swap happened.
   */
  compareAndSwap(key: string, expected: unknown, next: unknown): boolean {
    const encode = (value: unknown) => (value === undefined ? undefined : toBytes(value));
    return calling(
      () => wit.compareAndSwap(this.name, key, encode(expected), encode(next)),
      (e) => new KvError('kv', e),
    );
  }

  /** Entries whose key starts with `prefix`, values parsed as JSON. */
  list<T = unknown>(prefix = '', options: ListOptions = {}): Page<T> {
    const page = calling(
      () => wit.list(this.name, prefix, options.cursor, options.limit ?? 100),
      (e) => new KvError('kv', e),
    );
    return {
      entries: page.entries.map((entry) => ({ key: entry.key, value: json<T>(entry.value) })),
      nextCursor: page.nextCursor,
    };
  }
}

/** The plugin's own bucket. */
export const kv = new Bucket('');

/** A bucket the plugin's sidecar grants (`[kv] buckets = ["NAME"]`). */
export function bucket(name: string): Bucket {
  return new Bucket(name);
}
