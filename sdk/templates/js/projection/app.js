// A Corral projection (world `projection` of wit/worlds.wit): a deterministic
// fold of events into views. Build: see sdk/js/README.md.
// Reference: wit/ (corral:plugin@0.1.0).

export function describe() {
  return {
    name: 'my-projection',
    version: '0.1.0',
    routes: [],
    topics: ['my.>'],
    schedules: [],
    mutationKinds: [],
  };
}

export const projector = {
  // The id of the view this event updates; undefined skips the event.
  key(event) {
    return event.topic;
  },

  // The new view (a Uint8Array), or undefined to delete it. Must be
  // deterministic; a thrown `{ code, message }` quarantines the event.
  apply(current, event) {
    const count = current === undefined ? 0 : Number(new TextDecoder().decode(current));
    return new TextEncoder().encode(String(count + 1));
  },
};
