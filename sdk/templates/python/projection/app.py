"""A Corral projection (world `projection` of wit/worlds.wit): a deterministic
fold of events into views.

Build: see sdk/python/README.md. Reference: wit/ (corral:plugin@0.1.0).
"""

from typing import Optional

import wit_world
from wit_world.exports import Projector as ProjectorExport
from wit_world.imports.types import Descriptor, Event


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="my-projection",
            version="0.1.0",
            routes=[],
            topics=["my.>"],
            schedules=[],
            mutation_kinds=[],
        )


class Projector(ProjectorExport):
    # The id of the view this event updates; None skips the event.
    def key(self, event: Event) -> Optional[str]:
        return event.topic

    # The new view, or None to delete it. Must be deterministic;
    # `raise Err(Failure(..))` quarantines the event.
    def apply(self, current: Optional[bytes], event: Event) -> Optional[bytes]:
        count = int(current) if current is not None else 0
        return str(count + 1).encode()
