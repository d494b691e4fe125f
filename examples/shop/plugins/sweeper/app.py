"""The shop's abandoned-cart sweeper, in Python: an event handler with a
schedule.

It keeps an index of open carts in its own kv bucket: `open/CART` is set on
`cart.opened` and removed on `cart.checked_out` and `cart.abandoned`. Every
minute (`schedule.sweeper.abandoned-carts`) it asks the cart plugin, through
the `carts` import (granted in sweeper.toml), to abandon each indexed cart.
The cart decides by its own last change: it refuses with `cart-active` if it
changed within ABANDON_AFTER_S (sweeper.toml's `[config]`), and with
`cart-closed` if it was checked out meanwhile; an abandoned cart publishes
`cart.abandoned` itself. The outcome of the last sweep is kept under
`last-sweep`.

The index holds the default tenant's carts: schedule ticks run for the
default tenant, and a plugin's calls act for the tenant of the event being
handled.
"""

import json
import os

import wit_world
from componentize_py_types import Err
from wit_world.exports import EventConsumer as EventConsumerExport
from wit_world.imports import carts, kv, log
from wit_world.imports.types import Descriptor, Event, Failure, Schedule

# The plugin's own bucket is the empty string.
OWN = ""
CART_PLUGIN = "cart"
PAGE = 100


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="sweeper",
            version="0.1.0",
            routes=[],
            topics=["cart.opened", "cart.checked_out", "cart.abandoned"],
            schedules=[Schedule(name="abandoned-carts", cron="0 * * * * *")],
            mutation_kinds=[],
        )


class EventConsumer(EventConsumerExport):
    def handle(self, event: Event) -> None:
        if event.topic.startswith("schedule."):
            sweep(event)
            return
        if event.tenant != "":
            return
        cart = cart_of(event)
        if event.topic == "cart.opened":
            call_kv(lambda: kv.set(OWN, f"open/{cart}", str(event.timestamp_ms).encode()))
        else:
            call_kv(lambda: kv.delete(OWN, f"open/{cart}"))


def sweep(tick: Event) -> None:
    idle_ms = int(os.environ.get("ABANDON_AFTER_S", "1800")) * 1000
    counts = {"open": 0, "abandoned": 0, "active": 0, "closed": 0}
    cursor = None
    while True:
        page = call_kv(lambda: kv.list(OWN, "open/", cursor, PAGE))
        for entry in page.entries:
            cart = entry.key[len("open/") :]
            counts["open"] += 1
            outcome = abandon(cart, idle_ms, tick)
            counts[outcome] += 1
            if outcome != "active":
                call_kv(lambda: kv.delete(OWN, entry.key))
        cursor = page.next_cursor
        if cursor is None:
            break
    summary = dict(counts, at_ms=tick.timestamp_ms, idle_ms=idle_ms)
    call_kv(lambda: kv.set(OWN, "last-sweep", json.dumps(summary, sort_keys=True).encode()))
    level = log.Level.INFO if counts["abandoned"] else log.Level.DEBUG
    log.write(level, f"swept {counts['open']} open cart(s), abandoned {counts['abandoned']}", [])


def abandon(cart: str, idle_ms: int, tick: Event) -> str:
    """Asks the cart to abandon itself: `abandoned`, `active` or `closed`."""
    payload = json.dumps({"idle_ms": idle_ms}).encode()
    try:
        # One idempotency key per cart and tick: a retried tick asks once.
        carts.mutate(CART_PLUGIN, cart, "abandon", payload, f"abandon-{cart}-{tick.id}")
        return "abandoned"
    except Err as error:
        reason = error.value
        if isinstance(reason, carts.CartError_Rejected):
            # The cart's refusal, as `code: message`.
            code = reason.value.split(":", 1)[0]
            if code == "cart-active":
                return "active"
            if code in ("cart-closed", "no-cart"):
                return "closed"
        # Unavailable, failed or not granted: the tick fails and is retried.
        raise Err(Failure(code="carts-unavailable", message=f"abandoning cart {cart}: {reason}"))


def cart_of(event: Event) -> str:
    try:
        cart = json.loads(event.payload).get("cart")
    except (ValueError, AttributeError):
        cart = None
    if not isinstance(cart, str) or not cart:
        text = event.payload.decode(errors="replace")
        raise Err(Failure(code="invalid-event", message=f"{event.topic} {event.id} has no cart id: {text}"))
    return cart


def call_kv(call):
    try:
        return call()
    except Err as error:
        raise Err(Failure(code="kv-unavailable", message=str(error.value)))
