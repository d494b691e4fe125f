declare module 'corral:plugin/carts@0.1.1' {
  /**
   * Applies a mutation of `kind` to the cart `id` of the cart plugin
   * `plugin` and returns the cart's new state once it is durable. A
   * repeated `idempotency-key` (for the same cart) applies nothing and
   * returns the recorded result.
   */
  export function mutate(plugin: string, id: string, kind: string, payload: Uint8Array, idempotencyKey: string | undefined): Applied;
  /**
   * Reads a cart's current state; none for a cart that was never mutated.
   */
  export function get(plugin: string, id: string): CartState | undefined;
  /**
   * Why a cart call failed. Except for `unavailable`, the cart is unchanged.
   */
  export type CartError = CartErrorNoSuchCartPlugin | CartErrorNotGranted | CartErrorUnknownKind | CartErrorInvalid | CartErrorRejected | CartErrorFailed | CartErrorUnavailable;
  /**
   * No cart plugin of that name is loaded.
   */
  export interface CartErrorNoSuchCartPlugin {
    tag: 'no-such-cart-plugin',
    val: string,
  }
  /**
   * The cart plugin is not granted to this plugin in its sidecar.
   */
  export interface CartErrorNotGranted {
    tag: 'not-granted',
    val: string,
  }
  /**
   * The cart plugin does not declare that mutation kind.
   */
  export interface CartErrorUnknownKind {
    tag: 'unknown-kind',
    val: string,
  }
  /**
   * The cart id or idempotency key is empty, longer than 256 bytes or
   * contains NUL, or the payload is over the host's limit.
   */
  export interface CartErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  /**
   * The cart plugin refused the mutation (its `failure`, as
   * `code: message`).
   */
  export interface CartErrorRejected {
    tag: 'rejected',
    val: string,
  }
  /**
   * The cart plugin failed (trap, out of fuel, timeout, busy), or the
   * cart cannot be served (its journal does not replay).
   */
  export interface CartErrorFailed {
    tag: 'failed',
    val: string,
  }
  /**
   * The carts could not take the call (storage failed, the host is
   * starting); the mutation may or may not be durable, so retry it
   * with the same idempotency key.
   */
  export interface CartErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
  /**
   * A mutation, once durable.
   */
  export interface Applied {
    /**
     * The cart's version after it: the mutations applied so far.
     */
    version: bigint,
    /**
     * The cart's new state.
     */
    state: Uint8Array,
    /**
     * Sequences of the events the mutation published (its outbox).
     */
    events: BigUint64Array,
  }
  /**
   * A cart's current state.
   */
  export interface CartState {
    /**
     * The mutations applied so far (at least 1).
     */
    version: bigint,
    /**
     * The state the last of them left.
     */
    state: Uint8Array,
  }
}
