"""An event as handlers and projections see it: the WIT record, its payload
parsed on demand."""

from typing import Any, Optional

from wit_world.imports import types

from ._codec import from_json


class Event:
    """One event of the log."""

    def __init__(self, raw: types.Event) -> None:
        self.id: str = raw.id
        """Unique id, the same on every redelivery."""
        self.topic: str = raw.topic
        """Dot-separated topic (`orders.created`)."""
        self.sequence: int = raw.sequence
        """Position in the log."""
        self.timestamp_ms: int = raw.timestamp_ms
        """When it was appended, in ms since the Unix epoch (a projection's clock)."""
        self.tenant: str = raw.tenant
        self.correlation_id: str = raw.correlation_id
        self.traceparent: Optional[str] = raw.traceparent
        self.payload: bytes = raw.payload

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return from_json(self.payload)

    def text(self) -> str:
        """The payload as UTF-8 text."""
        return self.payload.decode()


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether `topic` matches a subscription pattern: `*` is one segment, a
    final `>` one or more."""
    wanted, got = pattern.split("."), topic.split(".")
    for i, segment in enumerate(wanted):
        if segment == ">":
            return len(got) > i
        if i >= len(got) or (segment != "*" and segment != got[i]):
            return False
    return len(wanted) == len(got)
