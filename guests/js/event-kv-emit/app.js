// Fixture: an event handler in JavaScript that uses kv and emit. For each
// `orders.created` event with a JSON payload `{"order": ID, "amount": N}` it
// counts the order (`orders.count`), keeps the order under `order.ID`, adds
// the amount to `orders.total` and queues `orders.counted` with the new
// count (published with the event's acknowledgement, if it succeeds). A
// payload without an order id is refused with an `invalid-order` failure,
// which the host retries and then dead-letters.

import { increment, set } from 'corral:plugin/kv@0.1.1';
import { publishOnSuccess } from 'corral:plugin/emit@0.1.1';

// The plugin's own bucket is the empty string.
const OWN = '';

export function describe() {
  return {
    name: 'js-orders',
    version: '1.0.0',
    routes: [],
    topics: ['orders.created'],
    schedules: [],
    mutationKinds: [],
  };
}

export const eventConsumer = {
  handle(event) {
    const text = new TextDecoder().decode(event.payload);
    let order;
    try {
      order = JSON.parse(text);
    } catch {
      order = null;
    }
    if (order === null || typeof order.order !== 'string' || order.order === '') {
      // A thrown plain object becomes the `failure` of `result<_, failure>`;
      // a thrown Error would trap instead.
      throw { code: 'invalid-order', message: `event ${event.sequence} has no order id: ${text}` };
    }
    const count = increment(OWN, 'orders.count', 1n);
    increment(OWN, 'orders.total', BigInt(Math.trunc(order.amount ?? 0)));
    set(OWN, `order.${order.order}`, event.payload);
    const body = JSON.stringify({ order: order.order, count: Number(count), after: Number(event.sequence) });
    publishOnSuccess('orders.counted', new TextEncoder().encode(body));
  },
};
