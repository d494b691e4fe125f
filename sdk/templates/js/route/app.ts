// A Corral route plugin (world `route` of wit/worlds.wit), on the SDK in
// `corral/`. Build: `npm run build`. Reference: corral/README.md and wit/.

import { Response, Router, kv, log, routes } from 'corral';

const router = new Router().get('/my-route/:name', (request) => {
  const name = request.params.name!;
  // `kv` is the plugin's own bucket; kv errors are thrown as `KvError`.
  const visits = kv.increment(`visits.${name}`);
  log.info('greeted', { name, visits });
  return Response.json({ hello: name, visits });
});

// Add routes to the router: describe() reports its table to the host.
export const { describe, httpHandler } = routes({ name: 'my-route', version: '0.1.0' }, router);
