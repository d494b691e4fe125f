"""The `projection` world: `app = Projection("totals", "1.0.0",
topics=["orders.created"])`, then `@app.key` and `@app.apply` on two
functions, then `WitWorld, Projector = app.exports()`. Views are JSON values.
The world may import `log` alone: this module reaches no other import.

The same plugin in the `batched-projection` world, whose events the host
may hand over many at a time (which is what makes a projection fast):
`WitWorld, BatchProjector = app.exports(batched=True)`. Its `key` and
`apply` must then depend on nothing but the event and the view: nothing
carried over in globals from earlier events."""

from typing import Any, Callable, List, Optional, Tuple, Type

import wit_world
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

    def exports(self, batched: bool = False) -> Tuple[Type[Any], Type[Any]]:
        """The classes the `projection` world exports (`WitWorld, Projector`),
        or with `batched=True` those of `batched-projection` (`WitWorld,
        BatchProjector`)."""
        if self._key is None or self._apply is None:
            raise TypeError(f"projection {self.name} needs both @key and @apply")
        app, key, apply = self, self._key, self._apply

        class WitWorld(wit_world.WitWorld):
            def describe(self) -> types.Descriptor:
                return types.Descriptor(
                    name=app.name, version=app.version, routes=[], topics=app.topics, schedules=[], mutation_kinds=[]
                )

        class Folds:
            def key(self, event: types.Event) -> Optional[str]:
                return failing(lambda: key(Event(event)))

            def apply(self, current: Optional[bytes], event: types.Event) -> Optional[bytes]:
                before = None if current is None else from_json(current)
                after = failing(lambda: apply(before, Event(event)))
                return None if after is None else to_bytes(after)

        # Each world's bindings have only its own export: import the one asked for.
        if batched:
            from wit_world.exports import BatchProjector as BatchProjectorExport

            from ._batch import fold

            class BatchProjector(Folds, BatchProjectorExport):
                def fold(self, text: str, events: bytes) -> None:
                    fold(key, apply, text, events)

            return WitWorld, BatchProjector

        from wit_world.exports import Projector as ProjectorExport

        class Projector(Folds, ProjectorExport):
            pass

        return WitWorld, Projector
