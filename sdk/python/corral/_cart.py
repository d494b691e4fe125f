"""The `cart` world: `app = Cart("basket", "1.0.0", initial=lambda: {...})`,
then `@app.kind("add")` on the function applying each mutation kind, then
`WitWorld, StateMachine = app.exports()`. State and payloads are JSON values.
The world may import `log` alone: this module reaches no other import."""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

import wit_world
from wit_world.exports import StateMachine as StateMachineExport
from wit_world.exports.state_machine import Outcome
from wit_world.imports import types

from ._codec import from_json, to_bytes
from ._errors import Failure, failing

__all__ = ["Applied", "Cart", "Failure", "Mutation"]


@dataclass
class Mutation:
    """One mutation, its payload parsed as JSON (None when empty)."""

    id: str
    entity: str
    """The cart's id."""
    kind: str
    timestamp_ms: int
    """When it was accepted (the cart's clock)."""
    payload: Any


@dataclass
class Applied:
    """What a mutation leaves: the new state, and (topic, payload) events
    published once it is durable."""

    state: Any
    events: List[Tuple[str, Any]] = field(default_factory=list)


ApplyFn = Callable[[Any, Mutation], Applied]


class Cart:
    """A cart plugin. Each kind's function must be deterministic; raising
    `Failure` refuses the mutation: the caller gets its code and message,
    and nothing changes."""

    def __init__(self, name: str, version: str, initial: Callable[[], Any]) -> None:
        self.name = name
        self.version = version
        self.initial = initial
        self._kinds: Dict[str, ApplyFn] = {}

    def kind(self, kind: str) -> Callable[[ApplyFn], ApplyFn]:
        """Applies mutations of `kind` with the decorated function."""

        def register(fn: ApplyFn) -> ApplyFn:
            self._kinds[kind] = fn
            return fn

        return register

    def apply(self, state: Optional[bytes], raw: types.Mutation) -> Outcome:
        current = self.initial() if state is None else from_json(state)
        payload = from_json(raw.payload) if raw.payload else None
        mutation = Mutation(raw.id, raw.entity, raw.kind, raw.timestamp_ms, payload)
        fn = self._kinds.get(raw.kind)
        if fn is None:
            raise Failure("unknown-kind", f"cart {self.name} has no mutation kind {raw.kind}")
        applied = fn(current, mutation)
        events = [types.OutgoingEvent(topic=topic, payload=to_bytes(body)) for topic, body in applied.events]
        return Outcome(state=to_bytes(applied.state), events=events)

    def exports(self) -> Tuple[Type[Any], Type[Any]]:
        """The classes the `cart` world exports."""
        app = self

        class WitWorld(wit_world.WitWorld):
            def describe(self) -> types.Descriptor:
                kinds = list(app._kinds)
                return types.Descriptor(
                    name=app.name, version=app.version, routes=[], topics=[], schedules=[], mutation_kinds=kinds
                )

        class StateMachine(StateMachineExport):
            def apply(self, state: Optional[bytes], mutation: types.Mutation) -> Outcome:
                return failing(lambda: app.apply(state, mutation))

        return WitWorld, StateMachine
