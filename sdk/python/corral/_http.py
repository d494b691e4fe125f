"""Routes the way Python web handlers are written: an app whose decorators
(`@app.get("/orders/:id")`) build both the table `describe()` reports and the
dispatch, a `Request` with `params`, `query`, `headers` and `json()`, and a
`Response` built with `Response.json(...)`."""

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type
from urllib.parse import parse_qs

import wit_world
from wit_world.exports import HttpHandler as HttpHandlerExport
from wit_world.imports.types import Descriptor, HttpRequest, HttpResponse, Route

from ._codec import from_json, to_bytes
from ._errors import CorralError, HttpError


class Request:
    """One incoming request; each part is decoded when first read."""

    def __init__(self, raw: HttpRequest) -> None:
        self._raw = raw
        self.method: str = raw.method
        self.path: str = raw.path
        self.raw_query: str = raw.query
        """The query string as it came, without the `?`."""
        self.body: bytes = raw.body
        self._params: Optional[Dict[str, str]] = None
        self._query: Optional[Dict[str, List[str]]] = None
        self._headers: Optional[Dict[str, str]] = None

    @property
    def params(self) -> Dict[str, str]:
        """What the route's `:name` segments (and a trailing `*`, as "*") captured."""
        if self._params is None:
            self._params = dict(self._raw.params)
        return self._params

    @property
    def query(self) -> Dict[str, List[str]]:
        """The query string parsed: each name with its values."""
        if self._query is None:
            self._query = parse_qs(self._raw.query, keep_blank_values=True)
        return self._query

    @property
    def headers(self) -> Dict[str, str]:
        """Headers by lower-case name; a repeated header's values joined with ", "."""
        if self._headers is None:
            headers: Dict[str, str] = {}
            for name, value in self._raw.headers:
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._headers = headers
        return self._headers

    def text(self) -> str:
        """The body as UTF-8 text."""
        return self.body.decode()

    def json(self) -> Any:
        """The body parsed as JSON; a body that is not JSON answers 400."""
        try:
            return from_json(self.body)
        except ValueError as error:
            raise HttpError(400, "invalid_json", f"the request body is not JSON: {error}") from None


class Response:
    """One response: bytes, text, or (with `Response.json`) a value."""

    def __init__(
        self, body: "bytes | str" = b"", status: int = 200, headers: Optional[Mapping[str, str]] = None
    ) -> None:
        self.status = status
        self.headers: List[Tuple[str, str]] = list((headers or {}).items())
        self.body = to_bytes(body)
        if isinstance(body, str) and not self.has("content-type"):
            self.headers.append(("content-type", "text/plain; charset=utf-8"))

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None) -> "Response":
        """`data` as JSON (`content-type: application/json`)."""
        response = cls(to_bytes(data), status, headers)
        if not response.has("content-type"):
            response.headers.append(("content-type", "application/json"))
        return response

    @classmethod
    def empty(cls, status: int = 204) -> "Response":
        """An empty response: 204 unless told otherwise."""
        return cls(b"", status)

    def has(self, name: str) -> bool:
        """Whether a header of that name (any case) is set."""
        return any(n.lower() == name.lower() for n, _ in self.headers)

    def to_wit(self) -> HttpResponse:
        return HttpResponse(status=self.status, headers=self.headers, body=self.body)


Handler = Callable[[Request], Response]


def _split(path: str) -> List[str]:
    return [segment for segment in path.split("/") if segment]


def _matches(pattern: List[str], path: List[str]) -> bool:
    for i, segment in enumerate(pattern):
        if segment == "*":
            return True
        if i >= len(path) or (not segment.startswith(":") and segment != path[i]):
            return False
    return len(pattern) == len(path)


def _specificity(pattern: List[str]) -> List[int]:
    """Sorts as the host decides: segment by segment, a literal before a
    `:param` before `*`; a pattern that has ended before a `*` matching nothing."""
    return [0 if s == "*" else 1 if s.startswith(":") else 2 for s in pattern] + [3]


class Routes:
    """The routes of one plugin: `app = Routes("orders", "1.0.0")`, then
    `@app.get("/orders/:id")` on each handler, then
    `WitWorld, HttpHandler = app.exports()`."""

    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version
        self._routes: List[Tuple[str, str, List[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Serves `method` on `pattern` (`/orders/:id`, `/files/*`) with the decorated function."""

        def register(handler: Handler) -> Handler:
            self._routes.append((method.upper(), pattern, _split(pattern), handler))
            return handler

        return register

    def get(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.route("GET", pattern)

    def post(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.route("POST", pattern)

    def put(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.route("PUT", pattern)

    def patch(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.route("PATCH", pattern)

    def delete(self, pattern: str) -> Callable[[Handler], Handler]:
        return self.route("DELETE", pattern)

    def describe(self) -> Descriptor:
        """The table, as `describe()` reports it."""
        routes = [Route(method=method, pattern=pattern) for method, pattern, _, _ in self._routes]
        return Descriptor(
            name=self.name, version=self.version, routes=routes, topics=[], schedules=[], mutation_kinds=[]
        )

    def handle(self, raw: HttpRequest) -> HttpResponse:
        """Answers one request: the most specific matching route's handler, an
        `HttpError` as its JSON answer, an uncaught import error as a 503
        (`unavailable`) or 500 naming it, 404/405 when nothing here matches.
        Anything else raised traps the call."""
        path = _split(raw.path)
        matching = [r for r in self._routes if _matches(r[2], path)]
        if not matching:
            return Response.json({"error": "not_found", "message": f"no route for {raw.path}"}, 404).to_wit()
        allowed = sorted((r for r in matching if r[0] == raw.method), key=lambda r: _specificity(r[2]), reverse=True)
        if not allowed:
            return Response.json({"error": "method_not_allowed", "message": f"{raw.method} {raw.path}"}, 405).to_wit()
        try:
            return allowed[0][3](Request(raw)).to_wit()
        except HttpError as error:
            return Response.json({"error": error.code, "message": error.message}, error.status).to_wit()
        except CorralError as error:
            status = 503 if error.kind == "unavailable" else 500
            return Response.json({"error": error.code, "message": str(error)}, status).to_wit()

    def exports(self) -> Tuple[Type[Any], Type[Any]]:
        """The classes the `route` world exports: `WitWorld, HttpHandler = app.exports()`."""
        app = self

        class WitWorld(wit_world.WitWorld):
            def describe(self) -> Descriptor:
                return app.describe()

        class HttpHandler(HttpHandlerExport):
            def handle(self, request: HttpRequest) -> HttpResponse:
                return app.handle(request)

        return WitWorld, HttpHandler
