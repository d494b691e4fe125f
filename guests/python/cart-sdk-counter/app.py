"""Fixture: `cart-sdk-counter` in Python on the SDK, the same cart as the
TypeScript one (the same test runs both). Its state is `{"count": N,
"adds": M}`; `add` with `{"by": K}` (K a positive integer) adds K and
publishes `counter.added` `{"cart": ID, "count": N}` once the mutation is
durable; `reset` starts over. A payload without a positive `by` is refused
with a `Failure` (`not-positive`), which changes nothing.
"""

from typing import Any

from corral import Applied, Cart, Failure, Mutation, log

app = Cart("py-sdk-counter", "1.0.0", initial=lambda: {"count": 0, "adds": 0})


@app.kind("add")
def add(state: Any, mutation: Mutation) -> Applied:
    by = mutation.payload.get("by") if isinstance(mutation.payload, dict) else None
    if not isinstance(by, int) or isinstance(by, bool) or by <= 0:
        raise Failure("not-positive", f'add needs a positive integer "by", not {by!r}')
    count = state["count"] + by
    log.debug("added", cart=mutation.entity, by=by)
    return Applied({"count": count, "adds": state["adds"] + 1}, [("counter.added", {"cart": mutation.entity, "count": count})])


@app.kind("reset")
def reset(state: Any, mutation: Mutation) -> Applied:
    return Applied({"count": 0, "adds": state["adds"]})


WitWorld, StateMachine = app.exports()
