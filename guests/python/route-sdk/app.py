"""Fixture: `route-sdk` in Python on the SDK (`sdk/python`), the same routes
and answers as the TypeScript one (the same test runs both):

- `GET /sdk/hello/:name` answers text, the query echoed in `x-query`;
- `PUT /sdk/notes/:id` keeps the JSON body `{"text": ...}` in kv, counts the
  notes and queues `notes.saved` (published only if the call succeeds); a
  body that is not JSON is a 400 from `request.json()`, one without text a
  422 `HttpError`;
- `GET /sdk/notes/:id` reads it back (404 `HttpError` when absent), and the
  literal `GET /sdk/notes/count` wins over `:id`;
- `POST /sdk/counter-of-words` increments a value that is not a counter and
  answers the `KvError` it caught (409, its kind and code);
- `GET /sdk/boom` raises a plain exception: the call traps (500);
- `GET /sdk/files/*` answers the rest of the path, and the literal
  `GET /sdk/files/readme` wins over it.
"""

from corral import HttpError, KvError, Request, Response, Routes, emit_on_success, kv, log

app = Routes("py-sdk", "1.0.0")


@app.get("/sdk/hello/:name")
def hello(request: Request) -> Response:
    name = request.params.get("name", "world")
    log.info("greeting", name=name)
    return Response(f"hello, {name}, from python", headers={"x-query": request.raw_query})


@app.put("/sdk/notes/:id")
def save(request: Request) -> Response:
    note = request.json()
    text = note.get("text") if isinstance(note, dict) else None
    if not isinstance(text, str) or text == "":
        raise HttpError(422, "no_text", 'a note needs a non-empty "text"')
    id = request.params["id"]
    kv.set(f"note.{id}", {"text": text})
    count = kv.increment("notes")
    emit_on_success("notes.saved", {"id": id, "count": count})
    return Response.json({"id": id, "count": count}, status=201)


@app.get("/sdk/notes/count")
def count(request: Request) -> Response:
    return Response.json({"count": int(kv.get_text("notes") or "0")})


@app.get("/sdk/notes/:id")
def read(request: Request) -> Response:
    note = kv.get(f"note.{request.params['id']}")
    if note is None:
        raise HttpError(404, "no_note", f"no note {request.params['id']}")
    return Response.json(note)


@app.post("/sdk/counter-of-words")
def counter_of_words(request: Request) -> Response:
    kv.set("words", "not a number")
    try:
        kv.increment("words")
        return Response.empty(200)
    except KvError as error:
        return Response.json({"kind": error.kind, "code": error.code}, status=409)


@app.get("/sdk/boom")
def boom(request: Request) -> Response:
    raise RuntimeError("deliberate")


# A trailing `*` takes the rest of the path; a literal beside it wins.
@app.get("/sdk/files/*")
def file(request: Request) -> Response:
    return Response(f"file {request.params['*']}")


@app.get("/sdk/files/readme")
def readme(request: Request) -> Response:
    return Response("the readme")


WitWorld, HttpHandler = app.exports()
