// Fixture: `event-kv-emit` written on the SDK, with the same behaviour (the
// same test runs both). For each `orders.created` event `{ "order": ID,
// "amount": N }` it counts the order (`orders.count`), keeps it under
// `order.ID`, adds the amount to `orders.total` and queues `orders.counted`
// with the new count, published only when the handler succeeds. A payload
// without an order id throws `Failure('invalid-order', ...)`: retried, then
// dead-lettered.

import { Failure, defineEventHandler, emitOnSuccess, kv, type Event } from 'corral';

interface Order {
  order?: unknown;
  amount?: unknown;
}

function orderOf(event: Event): Order | undefined {
  try {
    return event.json<Order>();
  } catch {
    return undefined;
  }
}

export const { describe, eventConsumer } = defineEventHandler({
  name: 'js-sdk-orders',
  version: '1.0.0',
  topics: ['orders.created'],
  handle(event) {
    const order = orderOf(event);
    if (order === undefined || typeof order.order !== 'string' || order.order === '') {
      throw new Failure('invalid-order', `event ${event.sequence} has no order id: ${event.text()}`);
    }
    const count = kv.increment('orders.count');
    // The payload as it came, so its bytes are kept exactly.
    kv.set(`order.${order.order}`, event.payload);
    kv.increment('orders.total', typeof order.amount === 'number' ? Math.trunc(order.amount) : 0);
    emitOnSuccess('orders.counted', { order: order.order, count, after: event.sequence });
  },
});
