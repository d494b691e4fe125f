// Payloads, bodies, kv values, views and cart state are bytes on the wire;
// plugins mostly mean JSON. These turn values into bytes and back: a
// `Uint8Array` passes as it is, a string as UTF-8, anything else as JSON.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * `value` as bytes: bytes as they are, a string as UTF-8, else JSON. Bytes
 * the host hands over are not always this realm's `Uint8Array` (an
 * `instanceof` check misses them): any typed array or `DataView` counts.
 */
export function toBytes(value: unknown): Uint8Array {
  if (ArrayBuffer.isView(value)) {
    return value instanceof Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (typeof value === 'string') {
    return encoder.encode(value);
  }
  return encoder.encode(JSON.stringify(value));
}

/** `bytes` as UTF-8 text. */
export function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** `bytes` parsed as JSON. */
export function json<T = unknown>(bytes: Uint8Array): T {
  return JSON.parse(decoder.decode(bytes)) as T;
}

/** A u64 or s64 from the host as a number, refusing one a number cannot hold exactly. */
export function toNumber(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RangeError(`${value} does not fit a JavaScript number exactly: use the bigint form`);
  }
  return Number(value);
}
