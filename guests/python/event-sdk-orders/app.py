"""Fixture: `event-kv-emit` written on the Python SDK, with the same behaviour
(the same test runs both). For each `orders.created` event `{"order": ID,
"amount": N}` it counts the order (`orders.count`), keeps it under
`order.ID`, adds the amount to `orders.total` and queues `orders.counted`
with the new count, published only when the handler succeeds. A payload
without an order id raises `Failure("invalid-order", ...)`: retried, then
dead-lettered.
"""

from typing import Any

from corral import Event, EventHandler, Failure, emit_on_success, kv

app = EventHandler("py-sdk-orders", "1.0.0")


def order_of(event: Event) -> Any:
    try:
        return event.json()
    except ValueError:
        return None


@app.on("orders.created")
def created(event: Event) -> None:
    order = order_of(event)
    if not isinstance(order, dict) or not isinstance(order.get("order"), str) or order["order"] == "":
        raise Failure("invalid-order", f"event {event.sequence} has no order id: {event.text()}")
    count = kv.increment("orders.count")
    # The payload as it came, so its bytes are kept exactly.
    kv.set(f"order.{order['order']}", event.payload)
    amount = order.get("amount")
    kv.increment("orders.total", int(amount) if isinstance(amount, (int, float)) else 0)
    emit_on_success("orders.counted", {"order": order["order"], "count": count, "after": event.sequence})


WitWorld, EventConsumer = app.exports()
