// Fixture: `projection-totals` written on the SDK, folding to the same
// bytes (the same test runs both): `orders.created` events `{ "customer":
// C, "amount": N }` into one view per customer, `{"orders":COUNT,
// "total":SUM}`. An event without a customer is skipped; an amount that is
// not an integer throws `Failure('invalid-amount', ...)`, which quarantines
// the event. Imports only `corral/projection` (the world may import `log`
// alone).

import { Failure, defineProjection, type Event, type ProjectionPlugin } from 'corral/projection';

interface Totals {
  orders: number;
  total: number;
}

function order(event: Event): { customer?: unknown; amount?: unknown } {
  try {
    const value = event.json();
    return value !== null && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

/** The fold, which `batched-sdk-totals` serves in the batched world. */
export const totals: ProjectionPlugin<Totals> = {
  name: 'js-sdk-totals',
  version: '1.0.0',
  topics: ['orders.created'],
  key(event) {
    const customer = order(event).customer;
    return typeof customer === 'string' && customer !== '' ? customer : undefined;
  },
  apply(current, event) {
    const amount = order(event).amount;
    if (typeof amount !== 'number' || !Number.isInteger(amount)) {
      throw new Failure('invalid-amount', `event ${event.sequence}: amount ${JSON.stringify(amount)}`);
    }
    const view = current ?? { orders: 0, total: 0 };
    // Keys in a fixed order: the same fold always gives the same bytes.
    return { orders: view.orders + 1, total: view.total + amount };
  },
};

export const { describe, projector } = defineProjection(totals);
