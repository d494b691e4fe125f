// A Corral event handler (world `event-handler` of wit/worlds.wit).
// Build: see sdk/js/README.md. Reference: wit/ (corral:plugin@0.1.0).

import { write } from 'corral:plugin/log@0.1.0';
import { increment } from 'corral:plugin/kv@0.1.0';
import { publishOnSuccess } from 'corral:plugin/emit@0.1.0';

export function describe() {
  return {
    name: 'my-handler',
    version: '0.1.0',
    routes: [],
    // `orders.*` matches one segment, `orders.>` one or more.
    topics: ['my.topic'],
    // Each tick arrives as an event on `schedule.my-handler.NAME`.
    schedules: [],
    mutationKinds: [],
  };
}

export const eventConsumer = {
  // Returning means ok. Throwing a plain `{ code, message }` object fails the
  // event (retried, then dead-lettered); throwing an Error traps.
  handle(event) {
    if (event.payload.length === 0) {
      throw { code: 'empty', message: `event ${event.id} has no payload` };
    }
    const seen = increment('', 'seen', 1n);
    write('info', 'handled', [['topic', event.topic], ['seen', String(seen)]]);
    // Published with the event's acknowledgement, only if this returns ok
    // (`publish` would append at once and stay even if a later step failed).
    publishOnSuccess('my.topic.handled', event.payload);
  },
};
