// Fixture: a TypeScript route on the SDK that imports a package from the
// npm registry, zod (pinned in package.json, installed by `npm ci` before
// the build and bundled into the component by esbuild). `POST
// /npm/orders` validates its JSON body with a zod schema: a valid order is
// answered 201 with the parsed order (defaults filled in), an invalid one
// 422 with zod's issues, each naming the path in the document.

import { z } from 'zod';
import { HttpError, Response, Router, routes } from 'corral';

const Order = z.object({
  customer: z.string().min(1),
  lines: z.array(z.object({ sku: z.string().min(1), quantity: z.number().int().positive() })).min(1),
  currency: z.enum(['EUR', 'USD']).default('EUR'),
});

const router = new Router().post('/npm/orders', (request) => {
  const parsed = Order.safeParse(request.json());
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
    return Response.json({ error: 'invalid_order', issues }, { status: 422 });
  }
  if (parsed.data.lines.some((line) => line.sku === 'forbidden')) {
    throw new HttpError(403, 'forbidden_sku', 'that sku is not sold');
  }
  return Response.json(parsed.data, { status: 201 });
});

export const { describe, httpHandler } = routes({ name: 'js-npm', version: '1.0.0' }, router);
