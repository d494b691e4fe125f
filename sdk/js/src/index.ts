// Corral's JavaScript and TypeScript SDK, for the `route` and
// `event-handler` worlds (which may import everything). A projection or a
// cart imports `corral/projection` or `corral/cart` (and `corral/log`)
// instead: those worlds may import only `log`, and a bundle that reaches
// kv, emit, views or carts would not load as one.
//
// Layout: `http` (Request, Response, Router, routes), `handler`
// (defineEventHandler), `event`, `kv`, `emit`, `views`, `carts`, `log`,
// `errors`, `codec`, `describe`; `projection` and `cart` for the
// deterministic worlds.

export { Request, Response, Router, routes, type Handler, type ResponseInit, type RoutePlugin } from './http.js';
export { defineEventHandler, type EventHandlerPlugin } from './handler.js';
export { Event } from './event.js';
export { kv, bucket, Bucket, type Page, type ListOptions } from './kv.js';
export { emit, emitOnSuccess } from './emit.js';
export { view, views, queryViews, type ViewPage, type ViewQuery } from './views.js';
export { carts, Carts, type Applied, type CartState } from './carts.js';
export { log, type Fields } from './log.js';
export { CorralError, KvError, EmitError, ViewsError, CartError, Failure, HttpError } from './errors.js';
