// `corral:plugin/views`: a projection's views, read-only, in the caller's
// tenant, parsed as JSON. Throws `ViewsError`; `queryViews` needs a host
// implementing corral:plugin@0.1.1.

import * as wit from 'corral:plugin/views@0.1.1';
import { ViewsError, calling } from './errors.js';
import { json } from './codec.js';

/** One page of views, in id order. */
export interface ViewPage<T> {
  views: Array<{ id: string; value: T }>;
  /** Pass back as `cursor` for the next page; undefined when done. */
  nextCursor: string | undefined;
}

/** The view `id` of `projection`, parsed as JSON, or undefined. */
export function view<T = unknown>(projection: string, id: string): T | undefined {
  const bytes = calling(() => wit.get(projection, id), (e) => new ViewsError('views', e));
  return bytes === undefined ? undefined : json<T>(bytes);
}

/** Views of `projection` whose id starts with `prefix`, parsed as JSON. */
export function views<T = unknown>(
  projection: string,
  prefix = '',
  options: { cursor?: string; limit?: number } = {},
): ViewPage<T> {
  const page = calling(
    () => wit.list(projection, prefix, options.cursor, options.limit ?? 100),
    (e) => new ViewsError('views', e),
  );
  return { views: page.views.map((v) => ({ id: v.id, value: json<T>(v.value) })), nextCursor: page.nextCursor };
}

/** What `queryViews` asks: a SQL WHERE expression, a sort, a page. */
export interface ViewQuery {
  /** A SQL WHERE expression over the views' JSON fields: `customer = 'ada' AND total > 100`. */
  where?: string;
  /** `field`, `field ASC` or `field DESC`; by id when absent. */
  orderBy?: string;
  /** The previous page's `nextCursor`. */
  cursor?: string;
  limit?: number;
}

/**
 * Views of `projection` matching a query, parsed as JSON, answered through
 * the projection's declared indexes. A query that would read too many
 * views without one throws `ViewsError` of kind 'too-broad' (its message
 * names the index to declare); a malformed one, kind 'invalid'.
 */
export function queryViews<T = unknown>(projection: string, query: ViewQuery = {}): ViewPage<T> {
  const page = calling(
    () => wit.query(projection, query.where ?? '', query.orderBy ?? '', query.cursor, query.limit ?? 100),
    (e) => new ViewsError('views', e),
  );
  return { views: page.views.map((v) => ({ id: v.id, value: json<T>(v.value) })), nextCursor: page.nextCursor };
}
