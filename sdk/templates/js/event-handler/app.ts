// A Corral event handler (world `event-handler` of wit/worlds.wit), on the
// SDK in `corral/`. Build: `npm run build`. Reference: corral/README.md.

import { Failure, defineEventHandler, emitOnSuccess, kv, log } from 'corral';

export const { describe, eventConsumer } = defineEventHandler({
  name: 'my-handler',
  version: '0.1.0',
  // `orders.*` matches one segment, `orders.>` one or more.
  topics: ['my.topic'],
  // Each tick arrives as an event on `schedule.my-handler.NAME`, e.g.
  // schedules: { nightly: '0 0 3 * * *' },
  handle(event) {
    if (event.payload.length === 0) {
      // Fails the event: retried, then dead-lettered. Any other Error traps.
      throw new Failure('empty', `event ${event.id} has no payload`);
    }
    const seen = kv.increment('seen');
    log.info('handled', { topic: event.topic, seen });
    // Published with the event's acknowledgement, only if this returns
    // (`emit` would append at once and stay even if a later step failed).
    emitOnSuccess('my.topic.handled', event.payload);
  },
});
