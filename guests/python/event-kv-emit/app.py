"""Fixture: an event handler in Python that uses kv and emit, the same
behaviour as guests/js/event-kv-emit.

For each `orders.created` event with a JSON payload
`{"order": ID, "amount": N}` it counts the order (`orders.count`), keeps the
order under `order.ID`, adds the amount to `orders.total` and queues
`orders.counted` with the new count (published with the event's
acknowledgement, if it succeeds). A payload without an order id is
refused with an `invalid-order` failure, which the host retries and then
dead-letters.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.exports import EventConsumer as EventConsumerExport
from wit_world.imports import emit, kv
from wit_world.imports.types import Descriptor, Event, Failure

# The plugin's own bucket is the empty string.
OWN = ""


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="py-orders",
            version="1.0.0",
            routes=[],
            topics=["orders.created"],
            schedules=[],
            mutation_kinds=[],
        )


class EventConsumer(EventConsumerExport):
    def handle(self, event: Event) -> None:
        try:
            order = json.loads(event.payload)
        except ValueError:
            order = None
        if not isinstance(order, dict) or not isinstance(order.get("order"), str) or not order["order"]:
            text = event.payload.decode(errors="replace")
            raise Err(Failure(code="invalid-order", message=f"event {event.sequence} has no order id: {text}"))
        count = kv.increment(OWN, "orders.count", 1)
        kv.increment(OWN, "orders.total", int(order.get("amount", 0)))
        kv.set(OWN, f"order.{order['order']}", event.payload)
        body = json.dumps({"order": order["order"], "count": count, "after": event.sequence}, separators=(",", ":"))
        emit.publish_on_success("orders.counted", body.encode())
