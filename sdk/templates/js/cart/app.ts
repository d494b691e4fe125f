// A Corral cart (world `cart` of wit/worlds.wit): a deterministic state
// machine per entity, its state a JSON value, on the SDK in `corral/`.
// Build: `npm run build`. Reference: corral/README.md and wit/.
//
// The cart world may import `log` alone: import from 'corral/cart' and
// 'corral/log', never from 'corral'.

import { Failure, defineCart } from 'corral/cart';

interface Cart {
  items: number;
}

export const { describe, stateMachine } = defineCart<Cart>({
  name: 'my-cart',
  version: '0.1.0',
  kinds: ['add', 'clear'],
  initial: () => ({ items: 0 }),
  // Returns the new state and the events to publish once it is committed.
  // Must be deterministic; a thrown `Failure` is returned to the caller and
  // changes nothing.
  apply(cart, mutation) {
    if (mutation.kind === 'clear') {
      return { state: { items: 0 } };
    }
    const quantity = (mutation.payload as { quantity?: unknown } | undefined)?.quantity;
    if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity <= 0) {
      throw new Failure('invalid-quantity', 'quantity must be a positive integer');
    }
    return {
      state: { items: cart.items + quantity },
      events: [{ topic: 'my-cart.added', payload: { quantity } }],
    };
  },
});
