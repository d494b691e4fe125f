// Fixture: a cart on the SDK. Its state is `{ "count": N, "adds": M }`;
// `add` with `{ "by": K }` (K a positive integer) adds K and publishes
// `counter.added` `{ "cart": ID, "count": N }` once the mutation is durable;
// `reset` starts over. Anything else a payload holds is refused with a
// `Failure` (`not-positive`), which changes nothing. Imports only
// `corral/cart` and `corral/log` (the world may import `log` alone).

import { Failure, defineCart } from 'corral/cart';
import { log } from 'corral/log';

interface Counter {
  count: number;
  adds: number;
}

export const { describe, stateMachine } = defineCart<Counter>({
  name: 'js-sdk-counter',
  version: '1.0.0',
  kinds: ['add', 'reset'],
  initial: () => ({ count: 0, adds: 0 }),
  apply(state, mutation) {
    if (mutation.kind === 'reset') {
      return { state: { count: 0, adds: state.adds } };
    }
    const by = (mutation.payload as { by?: unknown } | undefined)?.by;
    if (typeof by !== 'number' || !Number.isInteger(by) || by <= 0) {
      throw new Failure('not-positive', `add needs a positive integer "by", not ${JSON.stringify(by)}`);
    }
    const count = state.count + by;
    log.debug('added', { cart: mutation.entity, by });
    return {
      state: { count, adds: state.adds + 1 },
      events: [{ topic: 'counter.added', payload: { cart: mutation.entity, count } }],
    };
  },
});
