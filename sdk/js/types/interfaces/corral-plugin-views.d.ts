declare module 'corral:plugin/views@0.1.1' {
  /**
   * Reads one view.
   */
  export function get(projection: string, id: string): Uint8Array | undefined;
  /**
   * Lists views whose id starts with `prefix`, after `cursor`, at most
   * `limit` of them (the host caps the limit).
   */
  export function list(projection: string, prefix: string, cursor: string | undefined, limit: number): ViewPage;
  /**
   * Views matching `filter`, a SQL `WHERE` expression over the views'
   * JSON fields (`customer = 'ada' AND total > 100`; empty: every view),
   * sorted by `order-by` (`placed_at DESC`; empty: by id), after
   * `cursor` (a previous page's `next-cursor`), at most `limit` (capped
   * by the host). Answered through the projection's declared indexes
   * where they serve, in the same way as `GET /views/PROJECTION?where=`.
   * (Since 0.1.1.)
   */
  export function query(projection: string, filter: string, orderBy: string, cursor: string | undefined, limit: number): ViewPage;
  /**
   * Why a view read failed.
   */
  export type ViewsError = ViewsErrorNoSuchProjection | ViewsErrorUnavailable;
  /**
   * No projection of that name is loaded.
   */
  export interface ViewsErrorNoSuchProjection {
    tag: 'no-such-projection',
    val: string,
  }
  /**
   * The view store failed; the read may be retried.
   */
  export interface ViewsErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
  /**
   * One view: its id and its current value.
   */
  export interface View {
    id: string,
    value: Uint8Array,
  }
  /**
   * A page of views in id order.
   */
  export interface ViewPage {
    views: Array<View>,
    /**
     * Pass back as `cursor` for the next page; none when done.
     */
    nextCursor?: string,
  }
  /**
   * Why a query was not answered. (Since 0.1.1.)
   */
  export type QueryError = QueryErrorNoSuchProjection | QueryErrorInvalid | QueryErrorTooBroad | QueryErrorUnavailable;
  /**
   * No projection of that name is loaded.
   */
  export interface QueryErrorNoSuchProjection {
    tag: 'no-such-projection',
    val: string,
  }
  /**
   * The filter, the sort or the cursor cannot be used; the message
   * says what and how to write it.
   */
  export interface QueryErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  /**
   * Answering would examine more views than the projection's scan
   * limit allows; the message names the index that would serve it.
   */
  export interface QueryErrorTooBroad {
    tag: 'too-broad',
    val: string,
  }
  /**
   * The view store failed; the query may be retried.
   */
  export interface QueryErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
}
