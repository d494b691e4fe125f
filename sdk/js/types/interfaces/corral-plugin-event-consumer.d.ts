/// <reference path="./corral-plugin-types.d.ts" />
declare module 'corral:plugin/event-consumer@0.1.1' {
  /**
   * Handles one event. An error (or a trap) makes the host retry the event
   * with backoff and, after the last attempt, send it to `dlq.<plugin>`.
   */
  export function handle(event: Event): void;
  export type Event = import('corral:plugin/types@0.1.1').Event;
  export type Failure = import('corral:plugin/types@0.1.1').Failure;
}
