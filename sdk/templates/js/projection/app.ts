// A Corral projection (world `projection` of wit/worlds.wit): a
// deterministic fold of events into JSON views, on the SDK in `corral/`.
// Build: `npm run build`. Reference: corral/README.md and wit/.
//
// The projection world may import `log` alone: import from
// 'corral/projection' and 'corral/log', never from 'corral'.

import { defineProjection } from 'corral/projection';

interface Count {
  events: number;
}

export const { describe, projector } = defineProjection<Count>({
  name: 'my-projection',
  version: '0.1.0',
  topics: ['my.>'],
  // The id of the view this event updates; undefined skips the event.
  key: (event) => event.topic,
  // The new view, or undefined to delete it. Must be deterministic; a
  // thrown `Failure` quarantines the event.
  apply: (current) => ({ events: (current?.events ?? 0) + 1 }),
});
