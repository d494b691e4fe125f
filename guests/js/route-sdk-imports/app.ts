// Fixture: every import of the SDK, and every error kind a guest can
// trigger, behind routes — run through `host test` (imports.test.toml) and
// the real host. Each `/imports/errors/:case` makes one failing call and
// answers the `CorralError` it caught: its class, kind and code, its limit
// (`too-large`) and whether it gave a reason.

import {
  CorralError,
  HttpError,
  Response,
  Router,
  bucket,
  carts,
  emit,
  emitOnSuccess,
  kv,
  log,
  routes,
  queryViews,
  view,
  views,
} from 'corral';

const big = 'x'.repeat((1 << 20) + 1);

/** One failing call per error kind. */
const failing: Record<string, () => unknown> = {
  'kv-access-denied': () => bucket('not-granted').get('k'),
  'kv-invalid-key': () => kv.get(''),
  'kv-too-large': () => kv.set('big', big),
  'kv-not-a-counter': () => (kv.set('word', 'abc'), kv.increment('word')),
  'emit-invalid-topic': () => emit('orders..created', {}),
  'emit-too-large': () => emit('orders.created', big),
  'emit-unavailable': () => emit('orders.created', {}),
  'carts-no-such-cart-plugin': () => carts('ghost').get('c1'),
  'carts-not-granted': () => carts('not-granted').get('c1'),
  'carts-unknown-kind': () => carts('js-sdk-counter').mutate('c1', 'multiply', { by: 2 }),
  'carts-invalid': () => carts('js-sdk-counter').mutate('c1', 'add', big),
  'carts-rejected': () => carts('js-sdk-counter').mutate('c1', 'add', { by: -1 }),
  'views-no-such-projection': () => view('ghost', 'x'),
  'views-query-invalid': () => queryViews('ghost', { where: 'total +' }),
};

const router = new Router()
  .get('/imports/kv', () => {
    kv.set('note', { text: 'tea' });
    kv.set('plain', 'milk');
    const counted = kv.increment('count', 2);
    const big = kv.incrementBig('huge', 9007199254740993n);
    const swapped = kv.compareAndSwap('note', { text: 'tea' }, { text: 'green tea' });
    const refused = kv.compareAndSwap('note', { text: 'tea' }, { text: 'black tea' });
    const listed = kv.list('no');
    const plain = kv.getText('plain');
    const deleted = kv.delete('plain');
    return Response.json({
      note: kv.get('note'),
      plain,
      bytes: kv.getBytes('note')?.length,
      counted,
      big: big.toString(),
      swapped,
      refused,
      listed: listed.entries,
      deleted,
    });
  })
  .get('/imports/shared/:key', (request) => {
    const shared = bucket('shared');
    shared.set(request.params.key!, { seen: shared.increment(`${request.params.key}.n`) });
    return Response.json(shared.get(request.params.key!));
  })
  .post('/imports/emit/:topic', (request) => {
    const topic = request.params.topic!;
    if (request.query.get('on') === 'success') {
      emitOnSuccess(topic, request.json());
      return Response.json({ queued: topic }, { status: 202 });
    }
    return Response.json({ sequence: emit(topic, request.json()) }, { status: 201 });
  })
  .get('/imports/views/:projection/:id', (request) => {
    const { projection, id } = request.params as { projection: string; id: string };
    const page = views(projection, '', { limit: 10 });
    return Response.json({ one: view(projection, id) ?? null, ids: page.views.map((v) => v.id), next: page.nextCursor ?? null });
  })
  .post('/imports/carts/:cart/:kind', (request) => {
    const { cart, kind } = request.params as { cart: string; kind: string };
    const key = request.headers.get('x-idempotency-key');
    const applied = carts('js-sdk-counter').mutate(cart, kind, request.json(), { idempotencyKey: key });
    return Response.json(applied);
  })
  .get('/imports/carts/:cart', (request) => Response.json(carts('js-sdk-counter').get(request.params.cart!) ?? null))
  .get('/imports/log', () => {
    log.trace('a trace line');
    log.debug('a debug line', { n: 1 });
    log.info('an info line', { object: { a: 1 }, text: 'plain' });
    log.warn('a warn line');
    log.error('an error line', { code: 'E1' });
    return Response.empty();
  })
  .get('/imports/errors/:case', (request) => {
    const call = failing[request.params.case!];
    if (call === undefined) {
      throw new HttpError(404, 'no_case', `no case ${request.params.case}`);
    }
    try {
      call();
    } catch (error) {
      if (error instanceof CorralError) {
        // A limit is answered as it is; a reason (the host's words) only as
        // whether there is one, so specs need not copy it.
        const { name, kind, code, detail } = error;
        const limit = typeof detail === 'number' ? detail : null;
        return Response.json({ class: name, kind, code, limit, explained: typeof detail === 'string' && detail !== '' });
      }
      throw error;
    }
    throw new HttpError(500, 'no_error', `case ${request.params.case} did not fail`);
  })
  .get('/imports/uncaught', () => Response.json(kv.get('')));

export const { describe, httpHandler } = routes({ name: 'js-imports', version: '1.0.0' }, router);
