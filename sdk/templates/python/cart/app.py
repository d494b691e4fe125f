"""A Corral cart (world `cart` of wit/worlds.wit): a deterministic state
machine per entity.

Build: see sdk/python/README.md. Reference: wit/ (corral:plugin@0.1.0).
"""

import json
from typing import Optional

import wit_world
from componentize_py_types import Err
from wit_world.exports import StateMachine as StateMachineExport
from wit_world.exports.state_machine import Outcome
from wit_world.imports.types import Descriptor, Failure, Mutation, OutgoingEvent


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="my-cart",
            version="0.1.0",
            routes=[],
            topics=[],
            schedules=[],
            mutation_kinds=["add", "clear"],
        )


class StateMachine(StateMachineExport):
    # `state` is None for a new entity. Returns the new state and the events
    # to publish once it is committed. Must be deterministic;
    # `raise Err(Failure(..))` is returned to the caller and changes nothing.
    def apply(self, state: Optional[bytes], mutation: Mutation) -> Outcome:
        cart = json.loads(state) if state is not None else {"items": 0}
        events = []
        if mutation.kind == "add":
            try:
                quantity = json.loads(mutation.payload).get("quantity")
            except (ValueError, AttributeError):
                quantity = None
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
                raise Err(Failure(code="invalid-quantity", message="quantity must be a positive integer"))
            cart["items"] += quantity
            events.append(OutgoingEvent(topic="my-cart.added", payload=mutation.payload))
        else:
            cart["items"] = 0
        return Outcome(state=json.dumps(cart).encode(), events=events)
