"""The `projection` world: `app = Projection("totals", "1.0.0",
topics=["orders.created"])`, then `@app.key` and `@app.apply` on two
functions, then `WitWorld, Projector = app.exports()`. Views are JSON values.
The world may import `log` alone: this module reaches no other import."""

from typing import Any, Callable, List, Optional, Tuple, Type

import wit_world
from wit_world.exports import Projector as ProjectorExport
from wit_world.imports import types

from ._codec import from_json, to_bytes
from ._errors import Failure, failing
from ._event import Event

__all__ = ["Event", "Failure", "Projection"]

KeyFn = Callable[[Event], Optional[str]]
ApplyFn = Callable[[Any, Event], Any]


class Projection:
    """A projection plugin whose views are JSON values. `apply` must be
    deterministic; raising `Failure` quarantines the event (or halts the
    projection, as its sidecar says)."""

    def __init__(self, name: str, version: str, topics: List[str]) -> None:
        self.name = name
        self.version = version
        self.topics = list(topics)
        self._key: Optional[KeyFn] = None
        self._apply: Optional[ApplyFn] = None

    def key(self, fn: KeyFn) -> KeyFn:
        """Decorates the function naming the view an event concerns (None skips the event)."""
        self._key = fn
        return fn

    def apply(self, fn: ApplyFn) -> ApplyFn:
        """Decorates the fold: the view after an event, given the view before it
        (None for a new one); None deletes the view."""
        self._apply = fn
        return fn

    def exports(self) -> Tuple[Type[Any], Type[Any]]:
        """The classes the `projection` world exports."""
        if self._key is None or self._apply is None:
            raise TypeError(f"projection {self.name} needs both @key and @apply")
        app, key, apply = self, self._key, self._apply

        class WitWorld(wit_world.WitWorld):
            def describe(self) -> types.Descriptor:
                return types.Descriptor(
                    name=app.name, version=app.version, routes=[], topics=app.topics, schedules=[], mutation_kinds=[]
                )

        class Projector(ProjectorExport):
            def key(self, event: types.Event) -> Optional[str]:
                return failing(lambda: key(Event(event)))

            def apply(self, current: Optional[bytes], event: types.Event) -> Optional[bytes]:
                before = None if current is None else from_json(current)
                after = failing(lambda: apply(before, Event(event)))
                return None if after is None else to_bytes(after)

        return WitWorld, Projector
