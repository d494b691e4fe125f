/// <reference path="./corral-plugin-types.d.ts" />
declare module 'corral:plugin/state-machine@0.1.1' {
  /**
   * Applies one mutation to the current state (none for a new entity).
   * An error is returned to the caller and changes nothing. Must be
   * deterministic: replaying the journal relies on it.
   */
  export function apply(state: Uint8Array | undefined, mutation: Mutation): Outcome;
  export type Mutation = import('corral:plugin/types@0.1.1').Mutation;
  export type Failure = import('corral:plugin/types@0.1.1').Failure;
  export type OutgoingEvent = import('corral:plugin/types@0.1.1').OutgoingEvent;
  /**
   * The result of a successful mutation.
   */
  export interface Outcome {
    /**
     * The entity's new state.
     */
    state: Uint8Array,
    /**
     * Events published after the state is committed (the outbox).
     */
    events: Array<OutgoingEvent>,
  }
}
