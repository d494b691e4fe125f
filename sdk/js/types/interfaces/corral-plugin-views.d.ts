declare module 'corral:plugin/views@0.1.0' {
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
}
