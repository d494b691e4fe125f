"""Fixture: `route-sdk-imports` in Python on the SDK — the same routes and
answers as the TypeScript one, so the same spec (`guests/js/route-sdk-imports/
imports.test.toml`) runs against both through `host test`: every import, and
every error kind a guest can trigger, each `/imports/errors/:case` answering
the `CorralError` it caught (class, kind, code, its limit for `too-large`,
and whether it gave a reason).
"""

from typing import Any, Callable, Dict

from corral import (
    CorralError,
    HttpError,
    Request,
    Response,
    Routes,
    bucket,
    carts,
    emit,
    emit_on_success,
    kv,
    log,
    query_views,
    view,
    views,
)

app = Routes("py-imports", "1.0.0")
BIG = "x" * ((1 << 20) + 1)
COUNTER = "js-sdk-counter"


def not_a_counter() -> Any:
    kv.set("word", "abc")
    return kv.increment("word")


FAILING: Dict[str, Callable[[], Any]] = {
    "kv-access-denied": lambda: bucket("not-granted").get("k"),
    "kv-invalid-key": lambda: kv.get(""),
    "kv-too-large": lambda: kv.set("big", BIG),
    "kv-not-a-counter": not_a_counter,
    "emit-invalid-topic": lambda: emit("orders..created", {}),
    "emit-too-large": lambda: emit("orders.created", BIG),
    "emit-unavailable": lambda: emit("orders.created", {}),
    "carts-no-such-cart-plugin": lambda: carts("ghost").get("c1"),
    "carts-not-granted": lambda: carts("not-granted").get("c1"),
    "carts-unknown-kind": lambda: carts(COUNTER).mutate("c1", "multiply", {"by": 2}),
    "carts-invalid": lambda: carts(COUNTER).mutate("c1", "add", BIG),
    "carts-rejected": lambda: carts(COUNTER).mutate("c1", "add", {"by": -1}),
    "views-no-such-projection": lambda: view("ghost", "x"),
    "views-query-invalid": lambda: query_views("ghost", where="total +"),
}


@app.get("/imports/kv")
def kv_calls(request: Request) -> Response:
    kv.set("note", {"text": "tea"})
    kv.set("plain", "milk")
    counted = kv.increment("count", 2)
    big = kv.increment("huge", 9007199254740993)
    swapped = kv.compare_and_swap("note", {"text": "tea"}, {"text": "green tea"})
    refused = kv.compare_and_swap("note", {"text": "tea"}, {"text": "black tea"})
    listed = kv.list("no")
    plain = kv.get_text("plain")
    deleted = kv.delete("plain")
    note_bytes = kv.get_bytes("note")
    return Response.json(
        {
            "note": kv.get("note"),
            "plain": plain,
            "bytes": None if note_bytes is None else len(note_bytes),
            "counted": counted,
            "big": str(big),
            "swapped": swapped,
            "refused": refused,
            "listed": [{"key": key, "value": value} for key, value in listed.entries],
            "deleted": deleted,
        }
    )


@app.get("/imports/shared/:key")
def shared(request: Request) -> Response:
    key = request.params["key"]
    orders = bucket("shared")
    orders.set(key, {"seen": orders.increment(f"{key}.n")})
    return Response.json(orders.get(key))


@app.post("/imports/emit/:topic")
def emitting(request: Request) -> Response:
    topic = request.params["topic"]
    if request.query.get("on") == ["success"]:
        emit_on_success(topic, request.json())
        return Response.json({"queued": topic}, status=202)
    return Response.json({"sequence": emit(topic, request.json())}, status=201)


@app.get("/imports/views/:projection/:id")
def reading(request: Request) -> Response:
    projection, id = request.params["projection"], request.params["id"]
    page, next_cursor = views(projection, "", limit=10)
    return Response.json({"one": view(projection, id), "ids": [i for i, _ in page], "next": next_cursor})


@app.post("/imports/carts/:cart/:kind")
def mutating(request: Request) -> Response:
    key = request.headers.get("x-idempotency-key")
    applied = carts(COUNTER).mutate(request.params["cart"], request.params["kind"], request.json(), key)
    return Response.json({"version": applied.version, "state": applied.state, "events": applied.events})


@app.get("/imports/carts/:cart")
def cart_state(request: Request) -> Response:
    found = carts(COUNTER).get(request.params["cart"])
    return Response.json(None if found is None else {"version": found.version, "state": found.state})


@app.get("/imports/log")
def logging(request: Request) -> Response:
    log.trace("a trace line")
    log.debug("a debug line", n=1)
    log.info("an info line", object={"a": 1}, text="plain")
    log.warn("a warn line")
    log.error("an error line", code="E1")
    return Response.empty()


@app.get("/imports/errors/:case")
def errors(request: Request) -> Response:
    call = FAILING.get(request.params["case"])
    if call is None:
        raise HttpError(404, "no_case", f"no case {request.params['case']}")
    try:
        call()
    except CorralError as error:
        # A limit is answered as it is; a reason (the host's words) only as
        # whether there is one, so specs need not copy it.
        limit = error.detail if isinstance(error.detail, int) else None
        explained = isinstance(error.detail, str) and error.detail != ""
        return Response.json(
            {"class": type(error).__name__, "kind": error.kind, "code": error.code, "limit": limit, "explained": explained}
        )
    raise HttpError(500, "no_error", f"case {request.params['case']} did not fail")


@app.get("/imports/uncaught")
def uncaught(request: Request) -> Response:
    return Response.json(kv.get(""))


WitWorld, HttpHandler = app.exports()
