/**
 * `/v1/health/*`: a service's instances with their checks (`?passing` leaves out any not
 * passing, `?tag=` repeated keeps those with every tag), a service's checks, and every
 * check in a given state. Statuses come from shapes.ts (the one health mapping). Lists are
 * written in slices from one revision (listing.ts), whatever their size.
 */
import type { FastifyRequest } from 'fastify';
import type { Instance } from '../registry/index.js';
import { ChangeFeed } from './blocking.js';
import { serviceListRoute, tagFilter, tagVariant } from './catalog-routes.js';
import { CONSUL_STATUSES, type ConsulStatus } from './check-record.js';
import { ConsulError } from './errors.js';
import { arrayWriter, namespaceRange, sendSliced } from './listing.js';
import { arrayText, sendRemoteNamespace } from './remote-answers.js';
import { blockingRead, type ConsulContext, flag, refuseFilter, serviceFilter } from './request.js';
import type { Routes } from './routing.js';
import { healthCheck, instanceStatus, serviceEntry } from './shapes.js';

export function healthRoutes(routes: Routes, ctx: ConsulContext): void {
  serviceListRoute(
    routes,
    ctx,
    '/v1/health/service/:service',
    (q) => `health\u0000${flag(q, 'passing') ? 1 : 0}\u0000${tagVariant(q)}`,
    (q, dc) => {
      const passing = flag(q, 'passing');
      const tagged = tagFilter(q);
      return (i) =>
        tagged(i) && (!passing || instanceStatus(i) === 'passing') ? JSON.stringify(serviceEntry(i, dc)) : null;
    },
  );

  serviceListRoute(
    routes,
    ctx,
    '/v1/health/checks/:service',
    () => 'checks',
    () => (i) => (i.enabled ? JSON.stringify(healthCheck(i)) : null),
  );

  routes.add({
    method: 'GET',
    url: '/v1/health/state/:state',
    access: 'read',
    namespaced: true,
    serviceScope: 'filter',
    handler: async (req, reply, { q, ns }) => {
      refuseFilter(q);
      const inState = stateFilter(req);
      const inScope = serviceFilter(req);
      const pass = inScope === null ? inState : (i: Instance) => inState(i) && inScope(i.service);
      await blockingRead(ctx, reply, q, ChangeFeed.namespaceKey(ns), () => ctx.feed.namespaceIndex(ns));
      return sendSliced(ctx.lister, reply, (view) =>
        arrayWriter(view, namespaceRange(ns), (i) => (pass(i) ? JSON.stringify(healthCheck(i)) : null)),
      );
    },
    // Moved by a change to a check that is, or was, in the state asked for.
    remote: async (req, reply, call) => {
      const pass = stateFilter(req);
      return sendRemoteNamespace(
        ctx,
        req,
        reply,
        call,
        (before, after) => (before !== null && pass(before)) || (after !== null && pass(after)),
        (instances) => arrayText(instances, (i) => (pass(i) ? JSON.stringify(healthCheck(i)) : null)),
      );
    },
  });
}

/** `:state` as a test for the instances whose check is in it (enabled ones only); 400 for a state Consul does not have. */
function stateFilter(req: FastifyRequest): (i: Instance) => boolean {
  const state = (req.params as { state: string }).state;
  if (state !== 'any' && !(CONSUL_STATUSES as readonly string[]).includes(state))
    throw new ConsulError(400, 'Invalid state: must be any, passing, warning or critical');
  return (i) => i.enabled && (state === 'any' || instanceStatus(i) === (state as ConsulStatus));
}
