// An event as handlers, projections and schedules see it: the WIT record
// with numbers for its sequence and time, and its payload as JSON or text.

import type { Event as WitEvent } from 'corral:plugin/types@0.1.1';
import { json, text, toNumber } from './codec.js';

/** One event of the log. */
export class Event {
  /** Unique id, the same on every redelivery. */
  readonly id: string;
  /** Dot-separated topic (`orders.created`). */
  readonly topic: string;
  /** Position in the log. */
  readonly sequence: number;
  /** When it was appended, in ms since the Unix epoch (a projection's or cart's clock). */
  readonly timestampMs: number;
  /** The tenant of the request or event that caused it. */
  readonly tenant: string;
  /** The correlation id of the request or event that caused it. */
  readonly correlationId: string;
  /** The W3C traceparent of the call that published it, if traced. */
  readonly traceparent: string | undefined;
  /** The payload's bytes. */
  readonly payload: Uint8Array;

  constructor(raw: WitEvent) {
    this.id = raw.id;
    this.topic = raw.topic;
    this.sequence = toNumber(raw.sequence);
    this.timestampMs = toNumber(raw.timestampMs);
    this.tenant = raw.tenant;
    this.correlationId = raw.correlationId;
    this.traceparent = raw.traceparent;
    this.payload = raw.payload;
  }

  /** The payload parsed as JSON. */
  json<T = unknown>(): T {
    return json<T>(this.payload);
  }

  /** The payload as UTF-8 text. */
  text(): string {
    return text(this.payload);
  }
}
