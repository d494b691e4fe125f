// The `event-handler` world: `defineEventHandler` builds `describe()` and
// `eventConsumer` from the topics, schedules and handler it is given.

import type { Event as WitEvent } from 'corral:plugin/types@0.1.1';
import { Event } from './event.js';
import { failing } from './errors.js';
import { descriptor, type Named } from './describe.js';

/** An event handler plugin. */
export interface EventHandlerPlugin extends Named {
  /** Topic patterns it subscribes to (`orders.*`, `orders.>`). */
  topics: string[];
  /** Cron schedules: each tick is an event on `schedule.<plugin>.<name>`. */
  schedules?: Record<string, string>;
  /**
   * Handles one event. Throwing `Failure` (or leaving an import error
   * uncaught) retries it, then dead-letters it; events queued with
   * `emitOnSuccess` are published only when it returns.
   */
  handle(event: Event): void;
}

/** `export const { describe, eventConsumer } = defineEventHandler({ ... });` */
export function defineEventHandler(plugin: EventHandlerPlugin) {
  return {
    describe: () =>
      descriptor(plugin, {
        topics: [...plugin.topics],
        schedules: Object.entries(plugin.schedules ?? {}).map(([name, cron]) => ({ name, cron })),
      }),
    eventConsumer: { handle: (event: WitEvent) => failing(() => plugin.handle(new Event(event))) },
  };
}
