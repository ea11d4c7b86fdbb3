/**
 * `/v1/agent/*`: on Consul, the local agent's services and checks. Rollcall has no agents:
 * every node is "the agent" for the whole namespace and answers from the replicated state,
 * so a service registered through one node can be read, passed and deregistered through any
 * other. Writes go through the log like native ones (a follower forwards them).
 */
import type { FastifyReply } from 'fastify';
import { type ConsulStatus, isConsulStatus } from './check-record.js';
import { ConsulError } from './errors.js';
import { namespaceRange, objectWriter, sendSliced } from './listing.js';
import { oneById } from './node-calls.js';
import { parseBody, parseRegistration } from './registration.js';
import {
  authorize,
  type ConsulContext,
  namespaceOf,
  param,
  readOptions,
  readPoint,
  refuseFilter,
  requireServiceScope,
  serviceFilter,
} from './request.js';
import type { Routes } from './routing.js';
import { deregisterService, registerService } from './service-writes.js';
import { agentService, healthCheck, nodeId } from './shapes.js';
import { updateCheck } from './ttl-checks.js';

/** The Consul HTTP API level these shapes follow (reported in /v1/agent/self). */
export const CONSUL_API_VERSION = '1.16.0';

export function agentRoutes(routes: Routes, ctx: ConsulContext): void {
  routes.add({
    method: 'GET',
    url: '/v1/agent/self',
    access: 'read',
    namespaced: false,
    servedWhenCorrupt: true,
    handler: async () => agentSelf(ctx),
  });

  routes.add({
    method: 'GET',
    url: '/v1/agent/services',
    access: 'read',
    namespaced: true,
    serviceScope: 'filter',
    handler: async (req, reply, { q, ns }) => {
      refuseFilter(q);
      const inScope = serviceFilter(req);
      await readPoint(ctx, reply, readOptions(ctx, q));
      // IDs are unique on a Consul agent, only within a service here: the first service by name wins.
      return sendSliced(ctx.lister, reply, (view) =>
        objectWriter(view, namespaceRange(ns), (i) =>
          i.enabled && (inScope === null || inScope(i.service))
            ? [i.id, () => JSON.stringify(agentService(i, ctx.datacenter))]
            : null,
        ),
      );
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/agent/service/:id',
    access: 'read',
    namespaced: true,
    serviceScope: 'handler',
    handler: async (req, reply, { q, ns }) => {
      await readPoint(ctx, reply, readOptions(ctx, q));
      const instance = oneById(ctx, ns, (req.params as { id: string }).id, false, serviceFilter(req));
      requireServiceScope(req, instance.service);
      return agentService(instance, ctx.datacenter);
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/agent/checks',
    access: 'read',
    namespaced: true,
    serviceScope: 'filter',
    handler: async (req, reply, { q, ns }) => {
      refuseFilter(q);
      const inScope = serviceFilter(req);
      await readPoint(ctx, reply, readOptions(ctx, q));
      return sendSliced(ctx.lister, reply, (view) =>
        objectWriter(view, namespaceRange(ns), (i) => {
          if (!i.enabled || (inScope !== null && !inScope(i.service))) return null;
          const check = healthCheck(i);
          return [check['CheckID'] as string, () => JSON.stringify(check)];
        }),
      );
    },
  });

  routes.add({
    method: 'PUT',
    url: '/v1/agent/service/register',
    access: 'register',
    namespaced: true,
    serviceScope: 'handler',
    handler: async (req, reply, { q, ns }) => {
      const reg = parseRegistration(parseBody(req.body), ctx.node.registry.clusterVersion);
      requireServiceScope(req, reg.service);
      // The body's Namespace (Consul Enterprise) when the query names none; `?ns=` wins.
      let namespace = ns;
      if (param(q, 'ns') === undefined && reg.namespace !== null && reg.namespace !== ns) {
        namespace = namespaceOf(ctx, { ns: reg.namespace });
        await authorize(ctx, req, q, 'register', namespace, reg.service);
      }
      await registerService(ctx, req, namespace, reg);
      return empty(reply);
    },
  });

  routes.add({
    method: 'PUT',
    url: '/v1/agent/service/deregister/:id',
    access: 'register',
    namespaced: true,
    serviceScope: 'handler',
    handler: async (req, reply, { ns }) => {
      await deregisterService(ctx, req, ns, (req.params as { id: string }).id);
      return empty(reply);
    },
  });

  const statusRoutes: readonly [string, ConsulStatus][] = [
    ['pass', 'passing'],
    ['warn', 'warning'],
    ['fail', 'critical'],
  ];
  for (const [verb, status] of statusRoutes) {
    routes.add({
      method: 'PUT',
      url: `/v1/agent/check/${verb}/:checkId`,
      access: 'register',
      namespaced: true,
      serviceScope: 'handler',
      handler: async (req, reply, { q, ns }) => {
        await updateCheck(ctx, req, ns, (req.params as { checkId: string }).checkId, status, param(q, 'note'));
        return empty(reply);
      },
    });
  }

  routes.add({
    method: 'PUT',
    url: '/v1/agent/check/update/:checkId',
    access: 'register',
    namespaced: true,
    serviceScope: 'handler',
    handler: async (req, reply, { ns }) => {
      const body = parseBody(req.body);
      const status = body['Status'] ?? body['status'];
      if (!isConsulStatus(status)) throw new ConsulError(400, 'Status: must be passing, warning or critical');
      const output = body['Output'] ?? body['output'];
      if (output !== undefined && typeof output !== 'string') throw new ConsulError(400, 'Output: must be a string');
      await updateCheck(ctx, req, ns, (req.params as { checkId: string }).checkId, status, output);
      return empty(reply);
    },
  });
}

/** Consul answers a successful agent write with 200 and an empty body. */
function empty(reply: FastifyReply): FastifyReply {
  return reply.code(200).header('content-type', 'text/plain; charset=utf-8').send('');
}

/** /v1/agent/self: every top-level value an object (the Go client decodes map[string]map[string]any). */
function agentSelf(ctx: ConsulContext): Record<string, Record<string, unknown>> {
  const st = ctx.node.status();
  const { host, port } = ctx.listenAddress();
  return {
    Config: {
      Datacenter: ctx.datacenter,
      PrimaryDatacenter: ctx.datacenter,
      NodeName: ctx.node.id,
      NodeID: nodeId(ctx.node.id),
      Server: true,
      Version: CONSUL_API_VERSION,
      Revision: 'rollcall',
    },
    DebugConfig: { Datacenter: ctx.datacenter, NodeName: ctx.node.id, RollcallNamespace: ctx.namespace },
    Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-5 },
    Member: {
      Name: ctx.node.id,
      Addr: host,
      Port: port,
      Tags: { dc: ctx.datacenter, role: 'consul', rollcall: '1' },
      Status: 1,
    },
    Stats: {
      raft: {
        state: st.role,
        term: String(st.term),
        commit_index: String(st.commitIndex),
        applied_index: String(st.appliedIndex),
        last_log_index: String(st.lastIndex),
      },
      // blocking_queries: how many are parked on this node's Consul listener (for benchmarks and operators);
      // wakeups: how many parked queries a change has woken (one woken by another service's change shows here);
      // shared_answers: answers served already encoded for another query on the same service and revision.
      rollcall: {
        revision: String(st.revision),
        leader: st.leader ?? '',
        blocking_queries: String(ctx.feed.size),
        wakeups: String(ctx.feed.wakeups),
        shared_answers: String(ctx.feed.answers.hits),
      },
    },
    Meta: {},
    xDS: {},
  };
}
