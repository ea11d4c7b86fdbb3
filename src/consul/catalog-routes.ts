/**
 * `/v1/catalog/*`: services, one service's instances, nodes (each distinct instance address
 * is a node, shapes.ts), datacenters. Disabled instances are left out everywhere. Lists are
 * written in slices from one revision (listing.ts), whatever their size.
 */
import type { Instance } from '../registry/index.js';
import { serviceSortKey } from '../server/listing/instance-index.js';
import { ChangeFeed } from './blocking.js';
import {
  arrayWriter,
  catalogServicesWriter,
  nodesWriter,
  type SharedAnswer,
  sendSliced,
  serviceRange,
} from './listing.js';
import { readRemoteService } from './remote.js';
import {
  arrayText,
  catalogServicesText,
  movesEnabled,
  nodesText,
  sendRemote,
  sendRemoteNamespace,
  whileServing,
} from './remote-answers.js';
import type { Moves } from './remote-namespace.js';
import {
  blockingRead,
  type ConsulContext,
  params,
  type Query,
  readOptions,
  refuseFilter,
  serviceFilter,
  tokenOf,
} from './request.js';
import type { Routes } from './routing.js';
import { nameProblem } from './settings.js';
import { catalogService } from './shapes.js';

/**
 * A service's index: its revision (for an absent service, the registry's stand-in), at least
 * 1. From the listing index, which keeps it per service: the registry's own list would sort
 * the whole service to tell it, on every wake of every blocking query.
 */
export function serviceIndex(ctx: ConsulContext, ns: string, service: string): number {
  const stats = ctx.lister.index.services.get(serviceSortKey(ns, service));
  return Math.max(1, stats?.revision ?? ctx.node.registry.listInstances(ns, service).serviceRevision);
}

/**
 * `?tag=` (repeated): a test for instances that are enabled and have every tag given, in any
 * case, as Consul's catalog matches them (its serviceTagFilter lower-cases both sides).
 */
export function tagFilter(q: Query): (i: Instance) => boolean {
  const tags = params(q, 'tag').map((t) => t.toLowerCase());
  if (tags.length === 0) return (i) => i.enabled;
  return (i) => i.enabled && tags.every((t) => i.tags.some((own) => own.toLowerCase() === t));
}

/**
 * The common start of a route about one service (`:service`): refuse `?filter=`, then wait
 * as a blocking query on that service's index. Returns the service's name, and how to file
 * its answer (`variant`: the endpoint and what else the answer depends on) so that the
 * queries one change wakes share one encoding of it.
 */
export async function serviceRead(
  ctx: ConsulContext,
  req: { readonly params: unknown },
  reply: Parameters<typeof blockingRead>[1],
  q: Query,
  ns: string,
  variant: string,
): Promise<{ readonly service: string; readonly shared: SharedAnswer }> {
  refuseFilter(q);
  const service = (req.params as { service: string }).service;
  const key = ChangeFeed.serviceKey(ns, service);
  const index = await blockingRead(ctx, reply, q, key, () => serviceIndex(ctx, ns, service));
  return { service, shared: { cache: ctx.feed.answers, service: key, variant, index } };
}

/**
 * The `?tag=` filter as part of a shared answer's variant: as JSON, so that no two filters
 * read alike (a join would make `?tag=` the same as no filter, and one tag holding a NUL the
 * same as two); lower-cased, as the filter matches.
 */
export function tagVariant(q: Query): string {
  return JSON.stringify(params(q, 'tag').map((t) => t.toLowerCase()));
}

/**
 * A route answering a list about one service (`:service`): here, as a blocking query on the
 * service's index with its answer shared by the queries one change wakes; with `?dc=` naming
 * another datacenter, from a member there (remote.ts). `item` writes one instance (null:
 * left out) for the datacenter that holds it; `variant` names what else the answer depends on.
 */
export function serviceListRoute(
  routes: Routes,
  ctx: ConsulContext,
  url: string,
  variant: (q: Query) => string,
  item: (q: Query, datacenter: string) => (i: Instance) => string | null,
): void {
  routes.add({
    method: 'GET',
    url,
    access: 'read',
    namespaced: true,
    serviceScope: 'path',
    handler: async (req, reply, { q, ns }) => {
      const write = item(q, ctx.datacenter);
      const { service, shared } = await serviceRead(ctx, req, reply, q, ns, variant(q));
      // A name no service can have has no instances. Not read from the index: its keys join names
      // with NUL, so `web%00prod` would be the range of service web's cluster prod.
      if (nameProblem(service) !== null) return reply.type('application/json; charset=utf-8').send('[]');
      return sendSliced(ctx.lister, reply, (view) => arrayWriter(view, serviceRange(ns, service), write), shared);
    },
    remote: async (req, reply, { q, ns, dc }) => {
      refuseFilter(q);
      const service = (req.params as { service: string }).service;
      const opts = readOptions(ctx, q);
      const answer = await whileServing(ctx, reply, (signal) =>
        readRemoteService(ctx.federation, {
          datacenter: dc,
          namespace: ns,
          service,
          stale: opts.stale,
          index: opts.index,
          waitMs: opts.waitMs,
          token: tokenOf(req, q),
          timeoutMs: ctx.timeoutMs,
          signal,
        }),
      );
      return sendRemote(reply, opts, dc, answer, arrayText(answer.instances, item(q, dc)));
    },
  });
}

export function catalogRoutes(routes: Routes, ctx: ConsulContext): void {
  routes.add({
    method: 'GET',
    url: '/v1/catalog/datacenters',
    access: 'read',
    namespaced: false,
    handler: async () => ctx.datacenters?.() ?? [ctx.datacenter],
  });

  routes.add({
    method: 'GET',
    url: '/v1/catalog/services',
    access: 'read',
    namespaced: true,
    serviceScope: 'filter',
    handler: async (req, reply, { q, ns }) => {
      refuseFilter(q);
      const inScope = serviceFilter(req);
      await blockingRead(ctx, reply, q, ChangeFeed.catalogKey(ns), () => ctx.feed.catalogIndex(ns));
      return sendSliced(ctx.lister, reply, (view) => catalogServicesWriter(view, ns, ctx.feed.catalog, inScope));
    },
    remote: (req, reply, call) => sendRemoteNamespace(ctx, req, reply, call, movesCatalog, catalogServicesText),
  });

  serviceListRoute(
    routes,
    ctx,
    '/v1/catalog/service/:service',
    (q) => `catalog\u0000${tagVariant(q)}`,
    (q, dc) => {
      const pass = tagFilter(q);
      return (i) => (pass(i) ? JSON.stringify(catalogService(i, dc)) : null);
    },
  );

  routes.add({
    method: 'GET',
    url: '/v1/catalog/nodes',
    access: 'read',
    namespaced: true,
    handler: async (_req, reply, { q, ns }) => {
      refuseFilter(q);
      await blockingRead(ctx, reply, q, ChangeFeed.namespaceKey(ns), () => ctx.feed.namespaceIndex(ns));
      // One node per address; its indexes span the instances there.
      return sendSliced(ctx.lister, reply, (view) => nodesWriter(view, ns, ctx.datacenter));
    },
    remote: (req, reply, call) =>
      sendRemoteNamespace(ctx, req, reply, call, movesEnabled, (instances) => nodesText(instances, call.dc)),
  });
}

/**
 * What moves `/v1/catalog/services` (as the local CatalogIndex): an enabled instance coming
 * or going, or one whose tags changed; not a health, address or port change. A new instance
 * of a service already there with tags already there moves it too (the change alone cannot
 * tell), which at worst answers a blocking query with the same body.
 */
const movesCatalog: Moves = (before, after) => {
  const was = before?.enabled === true ? before : null;
  const is = after?.enabled === true ? after : null;
  if (was === null || is === null) return was !== is;
  return was.service !== is.service || was.tags.length !== is.tags.length || was.tags.some((t, k) => t !== is.tags[k]);
};
