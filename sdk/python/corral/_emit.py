"""`corral:plugin/emit`: payloads as JSON (or text, or bytes). Both raise
`EmitError` when the event is refused."""

from typing import Any

from wit_world.imports import emit as wit

from ._codec import to_bytes
from ._errors import EmitError, calling


def emit(topic: str, payload: Any) -> int:
    """Appends an event now and returns its sequence once durable. It stays
    published whatever the call does next: prefer `emit_on_success`."""
    return calling(lambda: wit.publish(topic, to_bytes(payload)), EmitError)


def emit_on_success(topic: str, payload: Any) -> None:
    """Queues an event, published only if the call succeeds (for an event
    handler, with its checkpoint): a failed or retried call publishes nothing."""
    calling(lambda: wit.publish_on_success(topic, to_bytes(payload)), EmitError)
