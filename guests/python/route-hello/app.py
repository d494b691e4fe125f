"""Fixture: a route plugin in Python.

`GET /py/hello/:name` answers `hello, NAME, from python` and echoes the query
string in a header, proving the request record reaches the guest and the
response comes back.
"""

import wit_world
from wit_world.exports import HttpHandler as HttpHandlerExport
from wit_world.imports import log
from wit_world.imports.types import Descriptor, HttpRequest, HttpResponse, Route


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="py-hello",
            version="1.0.0",
            routes=[Route(method="GET", pattern="/py/hello/:name")],
            topics=[],
            schedules=[],
            mutation_kinds=[],
        )


class HttpHandler(HttpHandlerExport):
    def handle(self, request: HttpRequest) -> HttpResponse:
        name = dict(request.params).get("name", "world")
        log.write(log.Level.INFO, "greeting", [("name", name)])
        return HttpResponse(
            status=200,
            headers=[("content-type", "text/plain; charset=utf-8"), ("x-query", request.query)],
            body=f"hello, {name}, from python".encode(),
        )
