// The shop's order confirmations, in TypeScript on the Corral SDK: an event
// handler that reacts to every `cart.checked_out`. It records a
// confirmation under `confirmation/ORDER_ID` in the shared kv bucket
// `orders` (granted in confirmations.toml; shop-api reads it for
// `GET /api/orders/:id`) and publishes `order.confirmed`.
//
// Delivery is at least once, so the handler is idempotent: the record is
// created with compare-and-swap (only if absent) and marked `published`
// once `order.confirmed` is out. A redelivered checkout finds the record and
// publishes again only if the earlier attempt stopped before publishing. A
// kv error left uncaught fails the event (`kv.unavailable`, ...): retried.

import { Failure, bucket, defineEventHandler, emit, log, type Event } from 'corral';

const orders = bucket('orders');

interface Checkout {
  order_id: string;
  cart?: string;
  customer?: string | null;
  total_cents?: number;
  items?: Array<{ quantity?: number }>;
}

interface Confirmation {
  order_id: string;
  cart: string | undefined;
  customer: string | null;
  total_cents: number;
  items: number;
  code: string;
  confirmed_at_ms: number;
  checkout_sequence: number;
  published: boolean;
}

export const { describe, eventConsumer } = defineEventHandler({
  name: 'confirmations',
  version: '0.1.0',
  topics: ['cart.checked_out'],
  handle(event) {
    const checkout = checkoutOf(event);
    const key = `confirmation/${checkout.order_id}`;
    let stored = orders.getBytes(key);
    if (stored === undefined) {
      const record: Confirmation = {
        order_id: checkout.order_id,
        cart: checkout.cart,
        customer: checkout.customer ?? null,
        total_cents: checkout.total_cents ?? 0,
        items: (checkout.items ?? []).reduce((n, line) => n + (line.quantity ?? 0), 0),
        code: confirmationCode(checkout.order_id),
        confirmed_at_ms: event.timestampMs,
        checkout_sequence: event.sequence,
        published: false,
      };
      const bytes = new TextEncoder().encode(JSON.stringify(record));
      // Only if absent: another delivery of the same checkout may have got there first.
      stored = orders.compareAndSwap(key, undefined, bytes) ? bytes : orders.getBytes(key)!;
    }
    const record = JSON.parse(new TextDecoder().decode(stored)) as Confirmation;
    if (record.published) {
      log.debug(`order ${record.order_id} already confirmed`);
      return;
    }
    const { order_id, cart, customer, total_cents, code } = record;
    emit('order.confirmed', { order_id, cart, customer, total_cents, code });
    orders.compareAndSwap(key, stored, { ...record, published: true });
    log.info(`order ${order_id} confirmed as ${code}`, { customer: String(customer) });
  },
});

/** The checkout of an event, or a failure the host retries and then dead-letters. */
function checkoutOf(event: Event): Checkout {
  let checkout: Partial<Checkout> | null = null;
  try {
    checkout = event.json<Partial<Checkout> | null>();
  } catch {
    // reported below
  }
  if (checkout === null || typeof checkout.order_id !== 'string' || checkout.order_id === '') {
    throw new Failure('invalid-checkout', `event ${event.sequence} on ${event.topic} has no order_id: ${event.text()}`);
  }
  return checkout as Checkout;
}

/** A short code a customer can read out: eight base-36 digits of the order id's FNV-1a hash. */
function confirmationCode(orderId: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(orderId)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return `C-${hash.toString(36).toUpperCase().padStart(8, '0')}`;
}
