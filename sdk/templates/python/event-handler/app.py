"""A Corral event handler (world `event-handler` of wit/worlds.wit).

Build: see sdk/python/README.md. Reference: wit/ (corral:plugin@0.1.0).
"""

import wit_world
from componentize_py_types import Err
from wit_world.exports import EventConsumer as EventConsumerExport
from wit_world.imports import emit, kv, log
from wit_world.imports.types import Descriptor, Event, Failure


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="my-handler",
            version="0.1.0",
            routes=[],
            # `orders.*` matches one segment, `orders.>` one or more.
            topics=["my.topic"],
            # Each tick arrives as an event on `schedule.my-handler.NAME`.
            schedules=[],
            mutation_kinds=[],
        )


class EventConsumer(EventConsumerExport):
    # Returning means ok. `raise Err(Failure(..))` fails the event (retried,
    # then dead-lettered); any other exception traps.
    def handle(self, event: Event) -> None:
        if not event.payload:
            raise Err(Failure(code="empty", message=f"event {event.id} has no payload"))
        seen = kv.increment("", "seen", 1)
        log.write(log.Level.INFO, "handled", [("topic", event.topic), ("seen", str(seen))])
        # Published with the event's acknowledgement, only if this returns
        # (`publish` would append at once and stay even if a later step failed).
        emit.publish_on_success("my.topic.handled", event.payload)
