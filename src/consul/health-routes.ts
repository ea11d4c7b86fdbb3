/**
 * `/v1/health/*`: a service's instances with their checks (`?passing` leaves out any not
 * passing, `?tag=` repeated keeps those with every tag), a service's checks, and every
 * check in a given state. Statuses come from shapes.ts (the one health mapping). Lists are
 * written in slices from one revision (listing.ts), whatever their size.
 */
import type { Instance } from '../registry/index.js';
import { ChangeFeed } from './blocking.js';
import { serviceRead, tagFilter, tagVariant } from './catalog-routes.js';
import { CONSUL_STATUSES, type ConsulStatus } from './check-record.js';
import { ConsulError } from './errors.js';
import { arrayWriter, namespaceRange, sendSliced, serviceRange } from './listing.js';
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
      const passing = flag(q, 'passing');
      const variant = `health\u0000${passing ? 1 : 0}\u0000${tagVariant(q)}`;
      const { service, shared } = await serviceRead(ctx, req, reply, q, ns, variant);
      const tagged = tagFilter(q);
      const pass = (i: Instance) => tagged(i) && (!passing || instanceStatus(i) === 'passing');
      return sendSliced(
        ctx.lister,
        reply,
        (view) =>
          arrayWriter(view, serviceRange(ns, service), (i) =>
            pass(i) ? JSON.stringify(serviceEntry(i, ctx.datacenter)) : null,
          ),
        shared,
      );
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/health/checks/:service',
    access: 'read',
    namespaced: true,
    handler: async (req, reply, { q, ns }) => {
      const { service, shared } = await serviceRead(ctx, req, reply, q, ns, 'checks');
      return sendSliced(
        ctx.lister,
        reply,
        (view) =>
          arrayWriter(view, serviceRange(ns, service), (i) => (i.enabled ? JSON.stringify(healthCheck(i)) : null)),
        shared,
      );
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
      if (state !== 'any' && !(CONSUL_STATUSES as readonly string[]).includes(state))
        throw new ConsulError(400, 'Invalid state: must be any, passing, warning or critical');
      await blockingRead(ctx, reply, q, ChangeFeed.namespaceKey(ns), () => ctx.feed.namespaceIndex(ns));
      const pass = (i: Instance) => i.enabled && (state === 'any' || instanceStatus(i) === (state as ConsulStatus));
      return sendSliced(ctx.lister, reply, (view) =>
        arrayWriter(view, namespaceRange(ns), (i) => (pass(i) ? JSON.stringify(healthCheck(i)) : null)),
      );
    },
  });
}
