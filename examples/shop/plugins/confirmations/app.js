// The shop's order confirmations, in JavaScript: an event handler that
// reacts to every `cart.checked_out`. It records a confirmation under
// `confirmation/ORDER_ID` in the shared kv bucket `orders` (granted in
// confirmations.toml; shop-api reads it for `GET /api/orders/:id`) and
// publishes `order.confirmed`.
//
// Delivery is at least once, so the handler is idempotent: the record is
// created with compare-and-swap (only if absent) and marked `published`
// once `order.confirmed` is out. A redelivered checkout finds the record and
// publishes again only if the earlier attempt stopped before publishing.

import { compareAndSwap, get } from 'corral:plugin/kv@0.1.0';
import { publish } from 'corral:plugin/emit@0.1.0';
import { write } from 'corral:plugin/log@0.1.0';

const BUCKET = 'orders';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function describe() {
  return {
    name: 'confirmations',
    version: '0.1.0',
    routes: [],
    topics: ['cart.checked_out'],
    schedules: [],
    mutationKinds: [],
  };
}

export const eventConsumer = {
  handle(event) {
    const checkout = parseCheckout(event);
    const key = `confirmation/${checkout.order_id}`;
    let stored = kv(() => get(BUCKET, key));
    if (stored === undefined) {
      const record = {
        order_id: checkout.order_id,
        cart: checkout.cart,
        customer: checkout.customer ?? null,
        total_cents: checkout.total_cents ?? 0,
        items: (checkout.items ?? []).reduce((n, line) => n + (line.quantity ?? 0), 0),
        code: confirmationCode(checkout.order_id),
        confirmed_at_ms: Number(event.timestampMs),
        checkout_sequence: Number(event.sequence),
        published: false,
      };
      const bytes = encoder.encode(JSON.stringify(record));
      if (kv(() => compareAndSwap(BUCKET, key, undefined, bytes))) {
        stored = bytes;
      } else {
        // Another delivery of the same checkout got there first.
        stored = kv(() => get(BUCKET, key));
      }
    }
    const record = JSON.parse(decoder.decode(stored));
    if (record.published) {
      write('debug', `order ${record.order_id} already confirmed`, []);
      return;
    }
    const confirmed = {
      order_id: record.order_id,
      cart: record.cart,
      customer: record.customer,
      total_cents: record.total_cents,
      code: record.code,
    };
    publish('order.confirmed', encoder.encode(JSON.stringify(confirmed)));
    const done = encoder.encode(JSON.stringify({ ...record, published: true }));
    kv(() => compareAndSwap(BUCKET, key, stored, done));
    write('info', `order ${record.order_id} confirmed as ${record.code}`, [['customer', String(record.customer)]]);
  },
};

/// The checkout of an event, or a failure the host retries and then
/// dead-letters (`dlq.confirmations`) with this message.
function parseCheckout(event) {
  let checkout = null;
  try {
    checkout = JSON.parse(decoder.decode(event.payload));
  } catch {
    // reported below
  }
  if (checkout === null || typeof checkout.order_id !== 'string' || checkout.order_id === '') {
    // A thrown plain object is the handler's `failure`; a thrown Error traps.
    throw {
      code: 'invalid-checkout',
      message: `event ${event.sequence} on ${event.topic} has no order_id: ${decoder.decode(event.payload)}`,
    };
  }
  return checkout;
}

/// Runs a kv call; its error becomes a failure the host retries.
function kv(call) {
  try {
    return call();
  } catch (error) {
    throw { code: 'kv-unavailable', message: `kv bucket ${BUCKET}: ${JSON.stringify(error.payload ?? String(error))}` };
  }
}

/// A short code a customer can read out: eight base-36 digits of the
/// order id's FNV-1a hash (the same order id always gets the same code).
function confirmationCode(orderId) {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(orderId)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return `C-${hash.toString(36).toUpperCase().padStart(8, '0')}`;
}
