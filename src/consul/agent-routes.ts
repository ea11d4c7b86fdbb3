/**
 * `/v1/agent/*`: on Consul, the local agent's services and checks. Rollcall has no agents:
 * every node is "the agent" for the whole namespace and answers from the replicated state,
 * so a service registered through one node can be read, passed and deregistered through any
 * other. Writes go through the log like native ones (a follower forwards them).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Instance, Register } from '../registry/index.js';
import { readRecord, withRecord } from './check-record.js';
import { ConsulError } from './errors.js';
import { asConsulError, barrier, findById, oneById, propose, Refused, REGISTER_FIELDS } from './node-calls.js';
import { parseBody, parseRegistration, type Registration } from './registration.js';
import { authorize, type ConsulContext, namespaceOf, param, readOptions, readPoint, refuseFilter } from './request.js';
import type { Routes } from './routing.js';
import { agentService, healthCheck, nodeId } from './shapes.js';
import { ensureCheckSession, updateCheck } from './ttl-checks.js';
import type { ConsulStatus } from './check-record.js';
import { isConsulStatus } from './check-record.js';

/** The Consul HTTP API level these shapes follow (reported in /v1/agent/self). */
export const CONSUL_API_VERSION = '1.16.0';

export function agentRoutes(routes: Routes, ctx: ConsulContext): void {
  routes.add({
    method: 'GET',
    url: '/v1/agent/self',
    access: 'read',
    namespaced: false,
    handler: async () => agentSelf(ctx),
  });

  routes.add({
    method: 'GET',
    url: '/v1/agent/services',
    access: 'read',
    namespaced: true,
    handler: async (_req, reply, { q, ns }) => {
      refuseFilter(q);
      await readPoint(ctx, reply, readOptions(ctx, q));
      const out: Record<string, unknown> = {};
      // IDs are unique on a Consul agent, only within a service here: the first service by name wins.
      for (const i of ctx.node.registry.listNamespace(ns).instances) if (!(i.id in out)) out[i.id] = agentService(i, ctx.datacenter);
      return out;
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/agent/service/:id',
    access: 'read',
    namespaced: true,
    handler: async (req, reply, { q, ns }) => {
      await readPoint(ctx, reply, readOptions(ctx, q));
      return agentService(oneById(ctx, ns, (req.params as { id: string }).id, false), ctx.datacenter);
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/agent/checks',
    access: 'read',
    namespaced: true,
    handler: async (_req, reply, { q, ns }) => {
      refuseFilter(q);
      await readPoint(ctx, reply, readOptions(ctx, q));
      const out: Record<string, unknown> = {};
      for (const i of ctx.node.registry.listNamespace(ns).instances) {
        const check = healthCheck(i);
        const id = check['CheckID'] as string;
        if (!(id in out)) out[id] = check;
      }
      return out;
    },
  });

  routes.add({
    method: 'PUT',
    url: '/v1/agent/service/register',
    access: 'register',
    namespaced: true,
    handler: async (req, reply, { q, ns }) => {
      const reg = parseRegistration(parseBody(req.body));
      // The body's Namespace (Consul Enterprise) when the query names none; `?ns=` wins.
      let namespace = ns;
      if (param(q, 'ns') === undefined && reg.namespace !== null && reg.namespace !== ns) {
        namespace = namespaceOf(ctx, { ns: reg.namespace });
        authorize(ctx, req, q, 'register', namespace);
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
    handler: async (req, reply, { ns }) => {
      await deregisterService(ctx, ns, (req.params as { id: string }).id);
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

/** The caller's address, for a registration without `Address` (Consul would use the agent's). */
function callerAddress(req: FastifyRequest): string {
  return req.ip.startsWith('::ffff:') ? req.ip.slice(7) : req.ip;
}

/**
 * Registers (or re-registers) a service instance. A Consul re-registration replaces: an
 * instance that was persistent and now has a TTL check, or the reverse, is removed and
 * registered again (two changes, one delete and one put).
 */
async function registerService(ctx: ConsulContext, req: FastifyRequest, ns: string, reg: Registration): Promise<void> {
  await barrier(ctx);
  const clash = findById(ctx, ns, reg.id, true).find((i) => i.service !== reg.service);
  if (clash !== undefined) throw new ConsulError(400, `ID ${JSON.stringify(reg.id)} is already used by service ${clash.service}`);
  try {
    const sessionId = reg.check === null ? undefined : await ensureCheckSession(ctx, req, ns, reg.check);
    const record = {
      check: reg.check === null ? null : { id: reg.check.id, name: reg.check.name, status: reg.check.status, notes: reg.check.notes, output: '', ttlMs: reg.check.ttlMs },
      warningWeight: reg.warningWeight,
    };
    const command: Register = {
      type: 'register',
      namespace: ns,
      service: reg.service,
      id: reg.id,
      address: reg.address ?? callerAddress(req),
      port: reg.port,
      tags: reg.tags,
      metadata: withRecord(reg.meta, record),
      ...(reg.weight === null ? {} : { weight: reg.weight }),
      ...(sessionId === undefined ? {} : { sessionId }),
    };
    try {
      await propose(ctx, command);
    } catch (err) {
      if (!(err instanceof Refused && err.error.code === 'KIND_MISMATCH')) throw err;
      await propose(ctx, { type: 'unregister', namespace: ns, service: reg.service, id: reg.id });
      await propose(ctx, command);
    }
  } catch (err) {
    throw asConsulError(err, REGISTER_FIELDS);
  }
}

/**
 * Deregisters by Consul service ID. An instance alone on its check's session takes the
 * session with it (closing it removes the instance); otherwise the instance alone goes.
 */
async function deregisterService(ctx: ConsulContext, ns: string, id: string): Promise<void> {
  await barrier(ctx);
  const i: Instance = oneById(ctx, ns, id, true);
  try {
    const s = i.sessionId;
    if (s !== null && readRecord(i).check !== null && ctx.node.registry.sessionInstances(s).length === 1) {
      try {
        await propose(ctx, { type: 'closeSession', sessionId: s });
        return;
      } catch (err) {
        if (!(err instanceof Refused && err.error.code === 'SESSION_NOT_FOUND')) throw err;
      }
    }
    await propose(ctx, { type: 'unregister', namespace: ns, service: i.service, id: i.id });
  } catch (err) {
    throw asConsulError(err);
  }
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
    Member: { Name: ctx.node.id, Addr: host, Port: port, Tags: { dc: ctx.datacenter, role: 'consul', rollcall: '1' }, Status: 1 },
    Stats: {
      raft: { state: st.role, term: String(st.term), commit_index: String(st.commitIndex), applied_index: String(st.appliedIndex), last_log_index: String(st.lastIndex) },
      rollcall: { revision: String(st.revision), leader: st.leader ?? '' },
    },
    Meta: {},
    xDS: {},
  };
}
