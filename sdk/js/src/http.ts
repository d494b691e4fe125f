// Routes the way web handlers are written: a `Request` with `params`,
// `query`, `headers` and `json()`, a `Response` built with `Response.json`,
// and a `Router` whose table is both what `describe()` reports and what
// dispatches each call.

import type { HttpRequest, HttpResponse, Route } from 'corral:plugin/types@0.1.1';
import { CorralError, HttpError } from './errors.js';
import { json, text, toBytes } from './codec.js';
import { descriptor, type Named } from './describe.js';

/**
 * One incoming request. Every read is synchronous (the host hands the whole
 * body over), and each part is decoded only when first read, so a handler
 * pays for what it uses.
 */
export class Request {
  private parsedParams: Readonly<Record<string, string>> | undefined;
  private parsedQuery: URLSearchParams | undefined;
  private parsedHeaders: ReadonlyMap<string, string> | undefined;

  constructor(private readonly raw: HttpRequest) {}

  /** Upper-case method. */
  get method(): string {
    return this.raw.method;
  }

  /** The path, without the query. */
  get path(): string {
    return this.raw.path;
  }

  /** What the route's `:name` segments (and a trailing `*`, as `'*'`) captured. */
  get params(): Readonly<Record<string, string>> {
    if (this.parsedParams === undefined) {
      const params: Record<string, string> = {};
      const pairs = this.raw.params;
      for (let i = 0; i < pairs.length; i++) {
        params[pairs[i]![0]] = pairs[i]![1];
      }
      this.parsedParams = params;
    }
    return this.parsedParams;
  }

  /** The query string, parsed. */
  get query(): URLSearchParams {
    return (this.parsedQuery ??= new URLSearchParams(this.raw.query));
  }

  /** The query string as it came, without the `?`. */
  get rawQuery(): string {
    return this.raw.query;
  }

  /** Headers by lower-case name; a repeated header's values joined with `, `. */
  get headers(): ReadonlyMap<string, string> {
    if (this.parsedHeaders === undefined) {
      const headers = new Map<string, string>();
      const pairs = this.raw.headers;
      for (let i = 0; i < pairs.length; i++) {
        const [name, value] = pairs[i]!;
        const seen = headers.get(name);
        headers.set(name, seen === undefined ? value : `${seen}, ${value}`);
      }
      this.parsedHeaders = headers;
    }
    return this.parsedHeaders;
  }

  /** The body's bytes. */
  get body(): Uint8Array {
    return this.raw.body;
  }

  /** The body as UTF-8 text. */
  text(): string {
    return text(this.raw.body);
  }

  /** The body parsed as JSON; a body that is not JSON answers 400. */
  json<T = unknown>(): T {
    try {
      return json<T>(this.raw.body);
    } catch (error) {
      throw new HttpError(400, 'invalid_json', `the request body is not JSON: ${(error as Error).message}`);
    }
  }
}

/** How a response starts: its status and headers. */
export interface ResponseInit {
  status?: number;
  headers?: Record<string, string> | Array<[string, string]>;
}

/** One response. The body is bytes, text, or (with `Response.json`) a value. */
export class Response {
  readonly status: number;
  readonly headers: Array<[string, string]>;
  readonly body: Uint8Array;

  constructor(body: Uint8Array | string = EMPTY, init?: ResponseInit) {
    this.status = init?.status ?? 200;
    this.headers = headerList(init?.headers);
    if (typeof body === 'string') {
      this.body = encoder.encode(body);
      if (!this.has('content-type')) {
        this.headers.push(['content-type', 'text/plain; charset=utf-8']);
      }
    } else {
      this.body = toBytes(body);
    }
  }

  /** `data` as JSON (`content-type: application/json`). */
  static json(data: unknown, init: ResponseInit = {}): Response {
    const response = new Response(toBytes(JSON.stringify(data)), init);
    if (!response.has('content-type')) {
      response.headers.push(['content-type', 'application/json']);
    }
    return response;
  }

  /** An empty response: 204 unless told otherwise. */
  static empty(status = 204, init: ResponseInit = {}): Response {
    return new Response(EMPTY, { ...init, status });
  }

  /** Whether a header of that name (any case) is set. */
  has(name: string): boolean {
    const lower = name.toLowerCase();
    for (let i = 0; i < this.headers.length; i++) {
      if (this.headers[i]![0].toLowerCase() === lower) {
        return true;
      }
    }
    return false;
  }

  /** The record the host takes. */
  toWit(): HttpResponse {
    return { status: this.status, headers: this.headers, body: this.body };
  }
}

/** A route handler. */
export type Handler = (request: Request) => Response;

/** A route of the table and its handler. */
export interface Entry {
  route: Route;
  segments: string[];
  handler: Handler;
}

/**
 * The routes of one plugin. The host matches each request against the same
 * table (`describe()`), so a call always has a route here; the router finds
 * which by the host's rules — literal segments before `:params` before `*`.
 */
export class Router {
  private readonly entries: Entry[] = [];

  /** Serves `method` on `pattern` (`/orders/:id`, `/files/*`). */
  on(method: string, pattern: string, handler: Handler): this {
    this.entries.push({ route: { method: method.toUpperCase(), pattern }, segments: split(pattern), handler });
    return this;
  }

  get(pattern: string, handler: Handler): this {
    return this.on('GET', pattern, handler);
  }

  post(pattern: string, handler: Handler): this {
    return this.on('POST', pattern, handler);
  }

  put(pattern: string, handler: Handler): this {
    return this.on('PUT', pattern, handler);
  }

  patch(pattern: string, handler: Handler): this {
    return this.on('PATCH', pattern, handler);
  }

  delete(pattern: string, handler: Handler): this {
    return this.on('DELETE', pattern, handler);
  }

  /** The most specific route for `raw`, in one pass over the table, or why there is none. */
  find(raw: HttpRequest): Entry | 'not_found' | 'method_not_allowed' {
    const path = split(raw.path);
    let best: Entry | undefined;
    let pathMatched = false;
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[i]!;
      if (!matches(entry.segments, path)) {
        continue;
      }
      pathMatched = true;
      if (entry.route.method === raw.method && (best === undefined || moreSpecific(entry.segments, best.segments) > 0)) {
        best = entry;
      }
    }
    return best ?? (pathMatched ? 'method_not_allowed' : 'not_found');
  }

  /** The table, as `describe()` reports it. */
  routes(): Route[] {
    return this.entries.map((entry) => ({ ...entry.route }));
  }

  /**
   * Answers one request: the best matching route's handler, an `HttpError`
   * as its JSON answer, an uncaught import error as a 503 (`unavailable`)
   * or 500 naming it, 404/405 when nothing here matches (a sidecar may have
   * changed the host's table). Anything else thrown traps the call.
   */
  handle(raw: HttpRequest): HttpResponse {
    const entry = this.find(raw);
    if (entry === 'not_found') {
      return Response.json({ error: 'not_found', message: `no route for ${raw.path}` }, { status: 404 }).toWit();
    }
    if (entry === 'method_not_allowed') {
      return Response.json({ error: 'method_not_allowed', message: `${raw.method} ${raw.path}` }, { status: 405 }).toWit();
    }
    try {
      return entry.handler(new Request(raw)).toWit();
    } catch (error) {
      if (error instanceof HttpError) {
        return Response.json({ error: error.code, message: error.message }, { status: error.status }).toWit();
      }
      if (error instanceof CorralError) {
        // An import error the handler left uncaught: 503 when retrying may
        // help, else 500, naming the error either way.
        const status = error.kind === 'unavailable' ? 503 : 500;
        return Response.json({ error: error.code, message: error.message }, { status }).toWit();
      }
      throw error;
    }
  }
}

// The SDK's request path is written for SpiderMonkey's interpreter (a
// plugin runs without a JIT): indexed loops rather than iterators,
// destructuring or callbacks, which each cost a call or an allocation.

const encoder = new TextEncoder();
const EMPTY = new Uint8Array();

/** Headers given as a record or pairs, as a list of pairs of its own. */
function headerList(headers: ResponseInit['headers']): Array<[string, string]> {
  if (headers === undefined) {
    return [];
  }
  if (Array.isArray(headers)) {
    return headers.slice();
  }
  const list: Array<[string, string]> = [];
  for (const name in headers) {
    list.push([name, headers[name]!]);
  }
  return list;
}

function split(path: string): string[] {
  const parts = path.split('/');
  const segments: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] !== '') {
      segments.push(parts[i]!);
    }
  }
  return segments;
}

function matches(pattern: string[], path: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const segment = pattern[i]!;
    if (segment === '*') {
      return true;
    }
    if (i >= path.length || (segment.charCodeAt(0) !== 58 /* ':' */ && segment !== path[i])) {
      return false;
    }
  }
  return pattern.length === path.length;
}

/**
 * Positive when `a` is more specific than `b` (two patterns matching one
 * path), as the host decides: segment by segment, a literal beats a
 * `:param`, which beats `*`; a pattern that has ended beats a `*` matching
 * nothing.
 */
function moreSpecific(a: string[], b: string[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const difference = score(a[i]) - score(b[i]);
    if (difference !== 0 || a[i] === '*') {
      return difference;
    }
  }
  return 0;
}

/** How specific a segment is: literal 2, `:param` 1, `*` 0, past the end 3. */
function score(segment: string | undefined): number {
  return segment === undefined ? 3 : segment === '*' ? 0 : segment.charCodeAt(0) === 58 /* ':' */ ? 1 : 2;
}

/** What a route plugin says of itself. */
export type RoutePlugin = Named;

/**
 * The exports of the `route` world for `router`:
 * `export const { describe, httpHandler } = routes({ name, version }, router);`
 */
export function routes(plugin: RoutePlugin, router: Router) {
  return {
    describe: () => descriptor(plugin, { routes: router.routes() }),
    httpHandler: { handle: (request: HttpRequest) => router.handle(request) },
  };
}
