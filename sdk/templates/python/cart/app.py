"""A Corral cart (world `cart` of wit/worlds.wit): a deterministic state
machine per entity, its state a JSON value, on the SDK in `corral/`.
Build: `./build.sh`. Reference: corral/README.md and wit/.

The cart world may import `log` alone: use `Cart` and `log` from `corral`,
not kv, emit, views or carts."""

from typing import Any

from corral import Applied, Cart, Failure, Mutation

app = Cart("my-cart", "0.1.0", initial=lambda: {"items": 0})


# Each returns the new state and the events to publish once it is
# committed. Must be deterministic; a raised `Failure` is returned to the
# caller and changes nothing.
@app.kind("add")
def add(cart: Any, mutation: Mutation) -> Applied:
    quantity = mutation.payload.get("quantity") if isinstance(mutation.payload, dict) else None
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise Failure("invalid-quantity", "quantity must be a positive integer")
    return Applied({"items": cart["items"] + quantity}, [("my-cart.added", {"quantity": quantity})])


@app.kind("clear")
def clear(cart: Any, mutation: Mutation) -> Applied:
    return Applied({"items": 0})


WitWorld, StateMachine = app.exports()
