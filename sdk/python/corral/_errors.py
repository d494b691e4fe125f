"""Errors a plugin raises and catches, as classes to branch on with
`except` and a `kind` to match on.

An import that fails (kv, emit, views, carts) raises the error class of its
interface, whose `kind` is the WIT variant's name ("not-a-counter",
"unavailable", ...). A handler fails on purpose by raising `Failure`
(events, projections, carts) or `HttpError` (routes); the world helpers
turn both into what the host expects. Anything else raised traps the call.
"""

import re
from typing import Any, Callable, TypeVar

from componentize_py_types import Err

T = TypeVar("T")


class CorralError(Exception):
    """What every error of an import shares."""

    interface = "corral"

    def __init__(self, kind: str, detail: "str | int | None") -> None:
        self.kind = kind
        """The WIT variant's name."""
        self.detail = detail
        """The variant's detail: a reason, or a limit in bytes for `too-large`."""
        text = f"{self.interface}: {kind}" if detail is None else f"{self.interface}: {kind}: {detail}"
        super().__init__(text)

    @property
    def code(self) -> str:
        """The failure code this error becomes when a handler does not catch it."""
        return f"{self.interface}.{self.kind}"


class KvError(CorralError):
    """A kv call failed: access-denied, invalid-key, too-large, not-a-counter or unavailable."""

    interface = "kv"


class EmitError(CorralError):
    """An event was not appended: invalid-topic, too-large or unavailable."""

    interface = "emit"


class ViewsError(CorralError):
    """A view read failed: no-such-projection or unavailable; a query also
    invalid or too-broad."""

    interface = "views"


class CartError(CorralError):
    """A cart call failed: no-such-cart-plugin, not-granted, unknown-kind, invalid,
    rejected (`detail` is "code: message"), failed or unavailable (retry with the
    same idempotency key)."""

    interface = "carts"


class Failure(Exception):
    """A handler's deliberate failure: an event is retried then dead-lettered, a
    projection's event quarantined, a cart mutation refused — each recorded with
    this code and message."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class HttpError(Exception):
    """A route's deliberate error answer: `{"error": code, "message": ...}` with this status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")


def _kind(variant: Any) -> str:
    """`KvError_NotACounter` -> `not-a-counter`."""
    name = type(variant).__name__.split("_", 1)[-1]
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def calling(call: Callable[[], T], error: "type[CorralError]") -> T:
    """Calls an import, raising its `Err(variant)` as `error(kind, detail)`."""
    try:
        return call()
    except Err as failed:
        variant = failed.value
        raise error(_kind(variant), getattr(variant, "value", None)) from None


def failing(handler: Callable[[], T]) -> T:
    """Runs a handler of a world whose export returns `result<_, failure>`: a
    `Failure` or an uncaught import error becomes the `failure` the host
    records; anything else traps."""
    from wit_world.imports.types import Failure as WitFailure

    try:
        return handler()
    except Failure as failure:
        raise Err(WitFailure(code=failure.code, message=failure.message)) from None
    except CorralError as error:
        raise Err(WitFailure(code=error.code, message=str(error))) from None
