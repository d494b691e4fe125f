// The `batched-projection` world: `defineBatchedProjection` is
// `defineProjection` whose events the host may hand over many at a time
// (`batch-projector.fold`), which is what makes a projection fast. `key`
// and `apply` are the same functions, and must depend on nothing but the
// event and the view: nothing carried over in globals from earlier events.
// Only `log` and `batch` may be imported beside it.

import type { Event as WitEvent } from 'corral:plugin/types@0.1.1';
import { begin, current, flush } from 'corral:plugin/batch@0.1.1';
import { Event } from './event.js';
import { CorralError, failing, Failure } from './errors.js';
import { json, toBytes } from './codec.js';
import { defineProjection, type ProjectionPlugin } from './projection.js';

export { Event } from './event.js';
export { Failure } from './errors.js';
export type { ProjectionPlugin } from './projection.js';

/** Bytes of kept view values past which a batch hands them over early. */
const KEPT_BYTES = 1 << 20;

/** A view's last value in this batch and the event that wrote it. */
interface Kept {
  event: number;
  id: string;
  bytes: Uint8Array | undefined;
}

/**
 * `export const { describe, batchProjector } = defineBatchedProjection({ ... });`
 * takes what `defineProjection` takes.
 */
export function defineBatchedProjection<V>(plugin: ProjectionPlugin<V>) {
  // One event alone (the host's verdict when a batch fails on it) is folded
  // as `defineProjection` folds it.
  const { describe, projector } = defineProjection(plugin);
  return {
    describe,
    batchProjector: { ...projector, fold: (text: string, events: Uint8Array) => fold(plugin, text, events) },
  };
}

/**
 * Folds the events of one batch the way the host follows it (see
 * `batch-projector.fold` in wit/handlers.wit): a segment begun before its
 * first event, each view read from the host once per batch and then kept
 * here, every view's last value handed over with `flush` at the end (or
 * early, past `KEPT_BYTES`). An event that fails hands over the writes of
 * the events before it only.
 */
function fold<V>(plugin: ProjectionPlugin<V>, text: string, events: Uint8Array): void {
  const decoder = new Decoder(text, events);
  const kept = new Map<string, Kept>();
  let keptBytes = 0;
  const handOver = (through: number) => {
    flush(
      Array.from(kept.values(), (k): [number, string, Uint8Array | undefined] => [k.event, k.id, k.bytes]),
      through,
    );
    kept.clear();
    keptBytes = 0;
  };
  let next = 0;
  let index = 0;
  for (; !decoder.done(); index++) {
    if (index === next) {
      next = begin(index);
    }
    const raw = decoder.next();
    if (raw === undefined) {
      handOver(index);
      throw { code: 'batch', message: 'the host handed over a malformed event' };
    }
    try {
      const event = new Event(raw);
      const id = plugin.key(event);
      if (id === undefined) {
        continue;
      }
      const slot = `${raw.tenant}\u0000${id}`;
      const before = kept.get(slot);
      const bytes = before === undefined ? current(index, id) : before.bytes;
      const after = plugin.apply(bytes === undefined ? undefined : json<V>(bytes), event);
      const written = after === undefined ? undefined : toBytes(after);
      keptBytes += (written?.length ?? 0) + (before === undefined ? slot.length : -(before.bytes?.length ?? 0));
      kept.set(slot, { event: index, id, bytes: written });
    } catch (error) {
      // A `Failure` (or an import error) is this event's verdict: the events
      // before it stand. Anything else traps, and the host folds again.
      if (error instanceof Failure || error instanceof CorralError) {
        handOver(index);
      }
      return failing(() => {
        throw error;
      });
    }
    if (keptBytes > KEPT_BYTES) {
      handOver(index + 1);
    }
  }
  handOver(index);
}

/** Events in `fold`'s encoding, decoded one at a time. */
class Decoder {
  private at = 0;
  private textAt = 0;
  private readonly view: DataView;
  /** The text as UTF-8 when it is not all ASCII (lengths are in bytes). */
  private readonly utf8: Uint8Array | undefined;
  private readonly utf8Decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly text: string,
    private readonly bytes: Uint8Array,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const utf8 = new TextEncoder().encode(text);
    this.utf8 = utf8.length === text.length ? undefined : utf8;
  }

  done(): boolean {
    return this.at >= this.bytes.length;
  }

  /** The next event, or undefined when it is cut short. */
  next(): WitEvent | undefined {
    if (this.at + 16 + 24 > this.bytes.length) {
      return undefined;
    }
    const sequence = this.view.getBigUint64(this.at, true);
    const timestampMs = this.view.getBigUint64(this.at + 8, true);
    this.at += 16;
    const id = this.string();
    const topic = this.string();
    const tenant = this.string();
    const correlationId = this.string();
    if (id === undefined || topic === undefined || tenant === undefined || correlationId === undefined) {
      return undefined;
    }
    if (this.at + 4 > this.bytes.length) {
      return undefined;
    }
    let traceparent: string | undefined;
    if (this.view.getUint32(this.at, true) === 0xffffffff) {
      this.at += 4;
    } else {
      traceparent = this.string();
      if (traceparent === undefined) {
        return undefined;
      }
    }
    if (this.at + 4 > this.bytes.length) {
      return undefined;
    }
    const length = this.view.getUint32(this.at, true);
    this.at += 4;
    if (this.at + length > this.bytes.length) {
      return undefined;
    }
    const payload = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return { id, topic, sequence, timestampMs, tenant, correlationId, traceparent, payload };
  }

  private string(): string | undefined {
    if (this.at + 4 > this.bytes.length) {
      return undefined;
    }
    const length = this.view.getUint32(this.at, true);
    this.at += 4;
    const end = this.textAt + length;
    if (this.utf8 === undefined) {
      if (end > this.text.length) {
        return undefined;
      }
      const value = this.text.slice(this.textAt, end);
      this.textAt = end;
      return value;
    }
    if (end > this.utf8.length) {
      return undefined;
    }
    try {
      const value = this.utf8Decoder.decode(this.utf8.subarray(this.textAt, end));
      this.textAt = end;
      return value;
    } catch {
      return undefined;
    }
  }
}
