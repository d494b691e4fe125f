"""A Corral route plugin (world `route` of wit/worlds.wit), on the SDK in
`corral/`. Build: `./build.sh`. Reference: corral/README.md and wit/."""

from corral import Request, Response, Routes, kv, log

app = Routes("my-route", "0.1.0")


@app.get("/my-route/:name")
def greet(request: Request) -> Response:
    name = request.params["name"]
    # `kv` is the plugin's own bucket; kv errors are raised as `KvError`.
    visits = kv.increment(f"visits.{name}")
    log.info("greeted", name=name, visits=visits)
    return Response.json({"hello": name, "visits": visits})


# Add routes with @app.get, @app.post, ...: describe() reports the table.
WitWorld, HttpHandler = app.exports()
