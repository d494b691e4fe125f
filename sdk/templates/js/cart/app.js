// A Corral cart (world `cart` of wit/worlds.wit): a deterministic state
// machine per entity. Build: see sdk/js/README.md.
// Reference: wit/ (corral:plugin@0.1.0).

export function describe() {
  return {
    name: 'my-cart',
    version: '0.1.0',
    routes: [],
    topics: [],
    schedules: [],
    mutationKinds: ['add', 'clear'],
  };
}

export const stateMachine = {
  // `state` is undefined for a new entity. Returns the new state and the
  // events to publish once it is committed. Must be deterministic; a thrown
  // `{ code, message }` is returned to the caller and changes nothing.
  apply(state, mutation) {
    const cart = state === undefined ? { items: 0 } : JSON.parse(new TextDecoder().decode(state));
    const events = [];
    if (mutation.kind === 'add') {
      let quantity;
      try {
        quantity = JSON.parse(new TextDecoder().decode(mutation.payload)).quantity;
      } catch {
        quantity = undefined;
      }
      if (!Number.isInteger(quantity) || quantity <= 0) {
        throw { code: 'invalid-quantity', message: 'quantity must be a positive integer' };
      }
      cart.items += quantity;
      events.push({ topic: 'my-cart.added', payload: mutation.payload });
    } else {
      cart.items = 0;
    }
    return { state: new TextEncoder().encode(JSON.stringify(cart)), events };
  },
};
