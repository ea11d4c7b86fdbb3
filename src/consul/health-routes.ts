/**
 * `/v1/health/*`: a service's instances with their checks (`?passing` leaves out any not
 * passing, `?tag=` repeated keeps those with every tag), a service's checks, and every
 * check in a given state. Statuses come from shapes.ts (the one health mapping).
 */
import { ChangeFeed } from './blocking.js';
import { serviceRead, taggedInstances } from './catalog-routes.js';
import { CONSUL_STATUSES, type ConsulStatus } from './check-record.js';
import { ConsulError } from './errors.js';
import { blockingRead, type ConsulContext, flag, refuseFilter } from './request.js';
import type { Routes } from './routing.js';
import { healthCheck, instanceStatus, serviceEntry } from './shapes.js';

export function healthRoutes(routes: Routes, ctx: ConsulContext): void {
  routes.add({
    method: 'GET',
    url: '/v1/health/service/:service',
    access: 'read',
    namespaced: true,
    handler: async (req, reply, { q, ns }) => {
      const service = await serviceRead(ctx, req, reply, q, ns);
      const passing = flag(q, 'passing');
      return taggedInstances(ctx, ns, service, q)
        .filter((i) => !passing || instanceStatus(i) === 'passing')
        .map((i) => serviceEntry(i, ctx.datacenter));
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/health/checks/:service',
    access: 'read',
    namespaced: true,
    handler: async (req, reply, { q, ns }) => {
      const service = await serviceRead(ctx, req, reply, q, ns);
      return ctx.node.registry.listInstances(ns, service).instances.map(healthCheck);
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/health/state/:state',
    access: 'read',
    namespaced: true,
    handler: async (req, reply, { q, ns }) => {
      refuseFilter(q);
      const state = (req.params as { state: string }).state;
      if (state !== 'any' && !(CONSUL_STATUSES as readonly string[]).includes(state)) throw new ConsulError(400, 'Invalid state: must be any, passing, warning or critical');
      await blockingRead(ctx, reply, q, ChangeFeed.namespaceKey(ns), () => ctx.feed.namespaceIndex(ns));
      return ctx.node.registry
        .listNamespace(ns)
        .instances.filter((i) => state === 'any' || instanceStatus(i) === (state as ConsulStatus))
        .map(healthCheck);
    },
  });
}
