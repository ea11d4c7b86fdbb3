/**
 * Instances: register (upsert), update (admin compare-and-set), deregister, read one, and
 * list a service's or a namespace's. One file per handler; the two listings share one
 * lister (the listing index, released when the app closes).
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { openLister } from '../../listing/serve.js';
import { deregisterInstanceRoute } from './deregister.js';
import { listNamespaceInstancesRoute, listServiceInstancesRoute } from './list.js';
import { getInstanceRoute } from './read.js';
import { registerInstanceRoute } from './register.js';
import { updateInstanceRoute } from './update.js';

export function instanceRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const lister = openLister(app, ctx.node.registry, {
    waitMs: ctx.limits.minRevisionTimeoutMs,
    maxItems: ctx.limits.listMaxItems,
  });
  registerInstanceRoute(app, ctx);
  updateInstanceRoute(app, ctx);
  deregisterInstanceRoute(app, ctx);
  listServiceInstancesRoute(app, ctx, lister);
  listNamespaceInstancesRoute(app, ctx, lister);
  getInstanceRoute(app, ctx);
}
