/**
 * `/v1/catalog/*`: services, one service's instances, nodes (each distinct instance address
 * is a node, shapes.ts), datacenters. Disabled instances are left out everywhere.
 */
import type { Instance } from '../registry/index.js';
import { ChangeFeed } from './blocking.js';
import { blockingRead, type ConsulContext, params, type Query, refuseFilter } from './request.js';
import type { Routes } from './routing.js';
import { catalogService, nodeName, nodeShape } from './shapes.js';

/** A service's index: its revision (for an absent service, the registry's stand-in), at least 1. */
export function serviceIndex(ctx: ConsulContext, ns: string, service: string): number {
  return Math.max(1, ctx.node.registry.listInstances(ns, service).serviceRevision);
}

/** The service's enabled instances with every `?tag=` given. */
export function taggedInstances(ctx: ConsulContext, ns: string, service: string, q: Query): readonly Instance[] {
  const tags = params(q, 'tag');
  const all = ctx.node.registry.listInstances(ns, service).instances;
  return tags.length === 0 ? all : all.filter((i) => tags.every((t) => i.tags.includes(t)));
}

/**
 * The common start of a route about one service (`:service`): refuse `?filter=`, then wait
 * as a blocking query on that service's index. Returns the service's name.
 */
export async function serviceRead(ctx: ConsulContext, req: { readonly params: unknown }, reply: Parameters<typeof blockingRead>[1], q: Query, ns: string): Promise<string> {
  refuseFilter(q);
  const service = (req.params as { service: string }).service;
  await blockingRead(ctx, reply, q, ChangeFeed.serviceKey(ns, service), () => serviceIndex(ctx, ns, service));
  return service;
}

export function catalogRoutes(routes: Routes, ctx: ConsulContext): void {
  routes.add({
    method: 'GET',
    url: '/v1/catalog/datacenters',
    access: 'read',
    namespaced: false,
    handler: async () => [ctx.datacenter],
  });

  routes.add({
    method: 'GET',
    url: '/v1/catalog/services',
    access: 'read',
    namespaced: true,
    handler: async (_req, reply, { q, ns }) => {
      refuseFilter(q);
      await blockingRead(ctx, reply, q, ChangeFeed.catalogKey(ns), () => ctx.feed.catalogIndex(ns));
      return ctx.feed.catalog.services(ns);
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/catalog/service/:service',
    access: 'read',
    namespaced: true,
    handler: async (req, reply, { q, ns }) => {
      const service = await serviceRead(ctx, req, reply, q, ns);
      return taggedInstances(ctx, ns, service, q).map((i) => catalogService(i, ctx.datacenter));
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/catalog/nodes',
    access: 'read',
    namespaced: true,
    handler: async (_req, reply, { q, ns }) => {
      refuseFilter(q);
      await blockingRead(ctx, reply, q, ChangeFeed.namespaceKey(ns), () => ctx.feed.namespaceIndex(ns));
      // One node per address; its indexes span the instances there.
      const nodes = new Map<string, Record<string, unknown>>();
      for (const i of ctx.node.registry.listNamespace(ns).instances) {
        const name = nodeName(i);
        const seen = nodes.get(name);
        if (seen === undefined) nodes.set(name, nodeShape(i, ctx.datacenter));
        else {
          seen['CreateIndex'] = Math.min(seen['CreateIndex'] as number, i.createRevision);
          seen['ModifyIndex'] = Math.max(seen['ModifyIndex'] as number, i.modRevision);
        }
      }
      return [...nodes.keys()].sort().map((k) => nodes.get(k)!);
    },
  });
}
