// Fixture: a projection in JavaScript, the same fold as
// guests/python/projection-totals (so both must produce the same bytes).
// Folds `orders.created` events with a JSON payload
// `{"customer": C, "amount": N}` into one view per customer:
// `{"orders":COUNT,"total":SUM}`. An event without a customer is skipped
// (`key` returns undefined, i.e. none); an amount that is not an integer is
// refused with an `invalid-amount` failure, which quarantines the event.

export function describe() {
  return {
    name: 'js-totals',
    version: '1.0.0',
    routes: [],
    topics: ['orders.created'],
    schedules: [],
    mutationKinds: [],
  };
}

function order(event) {
  try {
    const value = JSON.parse(new TextDecoder().decode(event.payload));
    return value !== null && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

export const projector = {
  key(event) {
    const customer = order(event).customer;
    return typeof customer === 'string' && customer !== '' ? customer : undefined;
  },

  apply(current, event) {
    const amount = order(event).amount;
    if (!Number.isInteger(amount)) {
      // A thrown plain object becomes the `failure`; a thrown Error traps.
      throw { code: 'invalid-amount', message: `event ${event.sequence}: amount ${JSON.stringify(amount)}` };
    }
    const view = current === undefined ? { orders: 0, total: 0 } : JSON.parse(new TextDecoder().decode(current));
    // Keys in a fixed order: the same fold always gives the same bytes.
    const next = { orders: view.orders + 1, total: view.total + amount };
    return new TextEncoder().encode(JSON.stringify(next));
  },
};
