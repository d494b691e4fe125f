"""The shop's abandoned-cart sweeper, in Python on the Corral SDK: an event
handler with a schedule.

It keeps an index of open carts in its own kv bucket: `open/CART` is set on
`cart.opened` and removed on `cart.checked_out` and `cart.abandoned`. Every
minute (`schedule.sweeper.abandoned-carts`) it asks the cart plugin, through
the `carts` import (granted in sweeper.toml), to abandon each indexed cart.
The cart decides by its own last change: it refuses with `cart-active` if it
changed within ABANDON_AFTER_S (sweeper.toml's `[config]`), and with
`cart-closed` if it was checked out meanwhile; an abandoned cart publishes
`cart.abandoned` itself. The outcome of the last sweep is kept under
`last-sweep`. A kv error left uncaught fails the event (`kv.unavailable`,
...), and it is retried.

The index holds the default tenant's carts: schedule ticks run for the
default tenant, and a plugin's calls act for the tenant of the event being
handled.
"""

import os
from typing import Optional

from corral import CartError, Event, EventHandler, Failure, carts, kv, log

app = EventHandler("sweeper", "0.1.0")
cart_plugin = carts("cart")
PAGE = 100


@app.on("cart.opened")
def opened(event: Event) -> None:
    if event.tenant == "":
        kv.set(f"open/{cart_of(event)}", str(event.timestamp_ms))


@app.on("cart.checked_out")
@app.on("cart.abandoned")
def closed(event: Event) -> None:
    if event.tenant == "":
        kv.delete(f"open/{cart_of(event)}")


@app.schedule("abandoned-carts", "0 * * * * *")
def sweep(tick: Event) -> None:
    idle_ms = int(os.environ.get("ABANDON_AFTER_S", "1800")) * 1000
    counts = {"open": 0, "abandoned": 0, "active": 0, "closed": 0}
    cursor: Optional[str] = None
    while True:
        page = kv.list("open/", cursor, PAGE)
        for key, _ in page.entries:
            cart = key[len("open/") :]
            counts["open"] += 1
            outcome = abandon(cart, idle_ms, tick)
            counts[outcome] += 1
            if outcome != "active":
                kv.delete(key)
        cursor = page.next_cursor
        if cursor is None:
            break
    kv.set("last-sweep", dict(counts, at_ms=tick.timestamp_ms, idle_ms=idle_ms))
    line = log.info if counts["abandoned"] else log.debug
    line(f"swept {counts['open']} open cart(s), abandoned {counts['abandoned']}")


def abandon(cart: str, idle_ms: int, tick: Event) -> str:
    """Asks the cart to abandon itself: `abandoned`, `active` or `closed`."""
    try:
        # One idempotency key per cart and tick: a retried tick asks once.
        cart_plugin.mutate(cart, "abandon", {"idle_ms": idle_ms}, f"abandon-{cart}-{tick.id}")
        return "abandoned"
    except CartError as error:
        if error.kind == "rejected" and isinstance(error.detail, str):
            # The cart's refusal, as `code: message`.
            code = error.detail.split(":", 1)[0]
            if code == "cart-active":
                return "active"
            if code in ("cart-closed", "no-cart"):
                return "closed"
        # Unavailable, failed or not granted: the tick fails and is retried.
        raise Failure("carts-unavailable", f"abandoning cart {cart}: {error}") from None


def cart_of(event: Event) -> str:
    try:
        payload = event.json()
    except ValueError:
        payload = None
    cart = payload.get("cart") if isinstance(payload, dict) else None
    if not isinstance(cart, str) or not cart:
        text = event.payload.decode(errors="replace")
        raise Failure("invalid-event", f"{event.topic} {event.id} has no cart id: {text}")
    return cart


WitWorld, EventConsumer = app.exports()
