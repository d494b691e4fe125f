"""Corral's Python SDK, for every world. Everything is imported from
`corral`, each name on first use: a projection or cart (whose world may
import `log` alone) that uses `Projection`/`Cart` and `log` never reaches the
kv, emit, views or carts bindings its world lacks.

Layout (private modules): `_http` (Routes, Request, Response), `_handler`
(EventHandler), `_projection` (Projection), `_cart` (Cart, Mutation,
Applied), `_event`, `_kv`, `_emit`, `_views`, `_carts`, `_log`, `_errors`,
`_codec`.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # `X as X`: re-exported, for type checkers (at run time __getattr__ imports).
    from ._cart import Applied as Applied, Cart as Cart, Mutation as Mutation
    from ._carts import Carts as Carts, carts as carts
    from ._emit import emit as emit, emit_on_success as emit_on_success
    from ._errors import CartError as CartError, CorralError as CorralError, EmitError as EmitError, Failure as Failure, HttpError as HttpError, KvError as KvError, ViewsError as ViewsError
    from ._event import Event as Event
    from ._handler import EventHandler as EventHandler
    from ._http import Request as Request, Response as Response, Routes as Routes
    from ._kv import Bucket as Bucket, bucket as bucket, kv as kv
    from ._log import log as log
    from ._projection import Projection as Projection
    from ._views import query_views as query_views, view as view, views as views

_WHERE = {
    "Applied": "_cart",
    "Cart": "_cart",
    "Mutation": "_cart",
    "Carts": "_carts",
    "carts": "_carts",
    "emit": "_emit",
    "emit_on_success": "_emit",
    "CartError": "_errors",
    "CorralError": "_errors",
    "EmitError": "_errors",
    "Failure": "_errors",
    "HttpError": "_errors",
    "KvError": "_errors",
    "ViewsError": "_errors",
    "Event": "_event",
    "EventHandler": "_handler",
    "Request": "_http",
    "Response": "_http",
    "Routes": "_http",
    "Bucket": "_kv",
    "bucket": "_kv",
    "kv": "_kv",
    "log": "_log",
    "Projection": "_projection",
    "view": "_views",
    "views": "_views",
    "query_views": "_views",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'corral' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
