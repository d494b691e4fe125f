"""A Corral route plugin (world `route` of wit/worlds.wit).

Build: see sdk/python/README.md. Reference: wit/ (corral:plugin@0.1.0).
"""

import json

import wit_world
from wit_world.exports import HttpHandler as HttpHandlerExport
from wit_world.imports import kv, log
from wit_world.imports.types import Descriptor, HttpRequest, HttpResponse, Route


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Descriptor:
        return Descriptor(
            name="my-route",
            version="0.1.0",
            routes=[Route(method="GET", pattern="/my-route/:name")],
            topics=[],
            schedules=[],
            mutation_kinds=[],
        )


class HttpHandler(HttpHandlerExport):
    def handle(self, request: HttpRequest) -> HttpResponse:
        name = dict(request.params)["name"]
        # "" is the plugin's own kv bucket; kv errors are raised as Err.
        visits = kv.increment("", f"visits.{name}", 1)
        log.write(log.Level.INFO, "greeted", [("name", name)])
        body = json.dumps({"hello": name, "visits": visits})
        return HttpResponse(status=200, headers=[("content-type", "application/json")], body=body.encode())
