"""Fixture: `projection-sdk-totals` in the `batched-projection` world
(`app.exports(batched=True)`: the host may fold many events in one call),
kept the same as that fixture (componentize-py reads only the guest's own
folder, so it cannot import it): `orders.created` events `{"customer": C,
"amount": N}` into one view per customer, `{"orders":COUNT,"total":SUM}`. An
event without a customer is skipped; an amount that is not an integer raises
`Failure("invalid-amount", ...)`, which quarantines the event.
"""

from typing import Any, Optional

from corral import Event, Failure, Projection

app = Projection("py-sdk-batched", "1.0.0", topics=["orders.created"])


def order(event: Event) -> "dict[str, Any]":
    try:
        value = event.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@app.key
def key(event: Event) -> Optional[str]:
    customer = order(event).get("customer")
    return customer if isinstance(customer, str) and customer != "" else None


@app.apply
def apply(current: Any, event: Event) -> Any:
    amount = order(event).get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise Failure("invalid-amount", f"event {event.sequence}: amount {amount!r}")
    view = current if current is not None else {"orders": 0, "total": 0}
    # Keys in a fixed order: the same fold always gives the same bytes.
    return {"orders": view["orders"] + 1, "total": view["total"] + amount}


WitWorld, BatchProjector = app.exports(batched=True)
