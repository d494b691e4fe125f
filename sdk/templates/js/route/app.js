// A Corral route plugin (world `route` of wit/worlds.wit).
// Build: see sdk/js/README.md. Reference: wit/ (corral:plugin@0.1.0).

import { write } from 'corral:plugin/log@0.1.0';
import { increment } from 'corral:plugin/kv@0.1.0';

export function describe() {
  return {
    name: 'my-route',
    version: '0.1.0',
    routes: [{ method: 'GET', pattern: '/my-route/:name' }],
    topics: [],
    schedules: [],
    mutationKinds: [],
  };
}

export const httpHandler = {
  handle(request) {
    const name = new Map(request.params).get('name');
    // '' is the plugin's own kv bucket; kv errors are thrown.
    const visits = increment('', `visits.${name}`, 1n);
    write('info', 'greeted', [['name', name]]);
    const body = JSON.stringify({ hello: name, visits: Number(visits) });
    return {
      status: 200,
      headers: [['content-type', 'application/json']],
      body: new TextEncoder().encode(body),
    };
  },
};
