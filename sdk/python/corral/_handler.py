"""The `event-handler` world: `app = EventHandler("orders", "1.0.0")`, then
`@app.on("orders.created")` and `@app.schedule("nightly", "0 0 3 * * *")` on
the functions that handle them, then `WitWorld, EventConsumer = app.exports()`.
The topics and schedules `describe()` reports are those decorated."""

from typing import Any, Callable, List, Tuple, Type

import wit_world
from wit_world.exports import EventConsumer as EventConsumerExport
from wit_world.imports import types

from ._errors import Failure, failing
from ._event import Event, topic_matches

EventFn = Callable[[Event], None]


class EventHandler:
    """An event handler plugin. A handler raising `Failure` (or leaving an
    import error uncaught) fails the event: retried, then dead-lettered;
    events queued with `emit_on_success` are published only when it returns."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self._handlers: List[Tuple[str, EventFn]] = []
        self._schedules: List[Tuple[str, str]] = []

    def on(self, pattern: str) -> Callable[[EventFn], EventFn]:
        """Handles events whose topic matches `pattern` (`orders.*`, `orders.>`)."""

        def register(handler: EventFn) -> EventFn:
            self._handlers.append((pattern, handler))
            return handler

        return register

    def schedule(self, name: str, cron: str) -> Callable[[EventFn], EventFn]:
        """Handles the ticks of a cron schedule (each an event on `schedule.<plugin>.<name>`)."""

        def register(handler: EventFn) -> EventFn:
            self._schedules.append((name, cron))
            self._handlers.append((f"schedule.{self.name}.{name}", handler))
            return handler

        return register

    def describe(self) -> types.Descriptor:
        topics = [pattern for pattern, _ in self._handlers if not pattern.startswith(f"schedule.{self.name}.")]
        schedules = [types.Schedule(name=name, cron=cron) for name, cron in self._schedules]
        return types.Descriptor(
            name=self.name, version=self.version, routes=[], topics=topics, schedules=schedules, mutation_kinds=[]
        )

    def handle(self, raw: types.Event) -> None:
        """Runs the first handler whose pattern matches the event's topic."""
        event = Event(raw)
        for pattern, handler in self._handlers:
            if topic_matches(pattern, event.topic):
                failing(lambda: handler(event))
                return
        failing(lambda: _unhandled(event))

    def exports(self) -> Tuple[Type[Any], Type[Any]]:
        """The classes the `event-handler` world exports."""
        app = self

        class WitWorld(wit_world.WitWorld):
            def describe(self) -> types.Descriptor:
                return app.describe()

        class EventConsumer(EventConsumerExport):
            def handle(self, event: types.Event) -> None:
                app.handle(event)

        return WitWorld, EventConsumer


def _unhandled(event: Event) -> None:
    raise Failure("unhandled-topic", f"no handler for topic {event.topic} (a sidecar added it?)")
