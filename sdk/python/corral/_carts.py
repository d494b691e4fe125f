"""`corral:plugin/carts`: mutating and reading carts of the caller's tenant
through their plugin's mailbox, payloads and states as JSON. Raises
`CartError`; "unavailable" means retry with the same idempotency key."""

from dataclasses import dataclass, field
from typing import Any, List, Optional

from wit_world.imports import carts as wit

from ._codec import from_json, to_bytes
from ._errors import CartError, calling


@dataclass
class CartState:
    """A cart's state at a version."""

    version: int
    state: Any


@dataclass
class Applied(CartState):
    """A mutation once durable, and the sequences of the events it published."""

    events: List[int] = field(default_factory=list)


class Carts:
    """The carts of one cart plugin (granted in the sidecar: `[carts] plugins = ["NAME"]`)."""

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin

    def mutate(self, id: str, kind: str, payload: Any, idempotency_key: Optional[str] = None) -> Applied:
        """Applies mutation `kind` to cart `id`; with an idempotency key, a repeat
        applies nothing and answers the first's result."""
        applied = calling(lambda: wit.mutate(self.plugin, id, kind, to_bytes(payload), idempotency_key), CartError)
        return Applied(applied.version, from_json(applied.state), list(applied.events))

    def get(self, id: str) -> Optional[CartState]:
        """Cart `id`'s state, or None for a cart never mutated."""
        found = calling(lambda: wit.get(self.plugin, id), CartError)
        return None if found is None else CartState(found.version, from_json(found.state))


def carts(plugin: str) -> Carts:
    """The carts of cart plugin `plugin`."""
    return Carts(plugin)
