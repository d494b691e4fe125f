// Fixture: a route plugin in JavaScript. `GET /js/hello/:name` answers
// `hello, NAME, from javascript` and echoes the query string in a header,
// proving the request record reaches the guest and the response comes back.

import { write } from 'corral:plugin/log@0.1.1';

export function describe() {
  return {
    name: 'js-hello',
    version: '1.0.0',
    routes: [{ method: 'GET', pattern: '/js/hello/:name' }],
    topics: [],
    schedules: [],
    mutationKinds: [],
  };
}

export const httpHandler = {
  handle(request) {
    const params = new Map(request.params);
    const name = params.get('name') ?? 'world';
    write('info', 'greeting', [['name', name]]);
    return {
      status: 200,
      headers: [
        ['content-type', 'text/plain; charset=utf-8'],
        ['x-query', request.query],
      ],
      body: new TextEncoder().encode(`hello, ${name}, from javascript`),
    };
  },
};
