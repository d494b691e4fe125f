"""Fixture: a projection in Python.

Folds `orders.created` events with a JSON payload
`{"customer": C, "amount": N}` into one view per customer:
`{"orders": COUNT, "total": SUM}`. An event without a customer is skipped
(`key` returns None); an amount that is not an integer is refused with an
`invalid-amount` failure, which quarantines the event.
"""

import json
from typing import Optional

import wit_world
from componentize_py_types import Err
from wit_world.exports import Projector as ProjectorExport
from wit_world.imports.types import Descriptor, Event, Failure


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="py-totals",
            version="1.0.0",
            routes=[],
            topics=["orders.created"],
            schedules=[],
            mutation_kinds=[],
        )


def order(event: Event) -> dict:
    try:
        value = json.loads(event.payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class Projector(ProjectorExport):
    def key(self, event: Event) -> Optional[str]:
        customer = order(event).get("customer")
        return customer if isinstance(customer, str) and customer else None

    def apply(self, current: Optional[bytes], event: Event) -> Optional[bytes]:
        amount = order(event).get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise Err(Failure(code="invalid-amount", message=f"event {event.sequence}: amount {amount!r}"))
        view = json.loads(current) if current is not None else {"orders": 0, "total": 0}
        view["orders"] += 1
        view["total"] += amount
        # Sorted keys and no spaces: the same fold always gives the same bytes.
        return json.dumps(view, sort_keys=True, separators=(",", ":")).encode()
