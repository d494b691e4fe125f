// Fixture: a route plugin in TypeScript on the SDK (`sdk/js`). One router
// serves several routes from the table `describe()` reports:
//
// - `GET /sdk/hello/:name` answers text, the query echoed in `x-query`;
// - `PUT /sdk/notes/:id` keeps the JSON body `{ "text": ... }` in kv,
//   counts the notes and queues `notes.saved` (published only if the call
//   succeeds); a body that is not JSON is a 400 from `request.json()`, one
//   without text a 422 `HttpError`;
// - `GET /sdk/notes/:id` reads it back (404 `HttpError` when absent), and
//   the literal `GET /sdk/notes/count` wins over `:id`;
// - `POST /sdk/counter-of-words` increments a value that is not a counter
//   and answers the `KvError` it caught (409, its kind and code);
// - `GET /sdk/boom` throws a plain `Error`: the call traps (500);
// - `GET /sdk/files/*` answers the rest of the path, and the literal
//   `GET /sdk/files/readme` wins over it.

import { HttpError, KvError, Response, Router, emitOnSuccess, kv, log, routes } from 'corral';

interface Note {
  text: string;
}

const router = new Router()
  // The same work as the raw-binding fixture `route-hello` (the HTTP
  // benchmark compares the two): one log line, text, the query echoed.
  .get('/sdk/hello/:name', (request) => {
    const name = request.params.name ?? 'world';
    log.info('greeting', { name });
    return new Response(`hello, ${name}, from typescript`, { headers: { 'x-query': request.rawQuery } });
  })
  .put('/sdk/notes/:id', (request) => {
    const note = request.json<Partial<Note>>();
    if (typeof note.text !== 'string' || note.text === '') {
      throw new HttpError(422, 'no_text', 'a note needs a non-empty "text"');
    }
    const id = request.params.id!;
    kv.set(`note.${id}`, { text: note.text });
    const count = kv.increment('notes');
    emitOnSuccess('notes.saved', { id, count });
    return Response.json({ id, count }, { status: 201 });
  })
  .get('/sdk/notes/count', () => Response.json({ count: Number(kv.getText('notes') ?? '0') }))
  .get('/sdk/notes/:id', (request) => {
    const note = kv.get<Note>(`note.${request.params.id}`);
    if (note === undefined) {
      throw new HttpError(404, 'no_note', `no note ${request.params.id}`);
    }
    return Response.json(note);
  })
  .post('/sdk/counter-of-words', () => {
    kv.set('words', 'not a number');
    try {
      kv.increment('words');
      return Response.empty(200);
    } catch (error) {
      if (error instanceof KvError) {
        return Response.json({ kind: error.kind, code: error.code }, { status: 409 });
      }
      throw error;
    }
  })
  .get('/sdk/boom', () => {
    throw new Error('deliberate');
  })
  // A trailing `*` takes the rest of the path; a literal beside it wins.
  .get('/sdk/files/*', (request) => new Response(`file ${request.params['*']}`))
  .get('/sdk/files/readme', () => new Response('the readme'));

export const { describe, httpHandler } = routes({ name: 'js-sdk', version: '1.0.0' }, router);
