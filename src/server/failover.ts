/**
 * Failover discovery (issue 18): `GET /v1/namespaces/{ns}/services/{svc}/instances?failover=dc2,dc3`
 * answers from the first datacenter, this one first, whose answer holds a usable instance
 * (enabled, health healthy, subhealthy or suspect, and kept by the request's own `cluster`
 * and `health` filters), the way a Consul prepared query with `Failover.Datacenters` does.
 * Which one answered is in `x-rollcall-datacenter` and in the body (`datacenter`, and
 * `failovers`: how many other datacenters were asked, Consul's `Failovers`). When none has
 * one, this datacenter's own (empty of usable instances) answer is given.
 *
 * It runs in the federation preValidation hook, before the list route: this datacenter is
 * judged after the request's read point (so a linearizable read judges the latest state),
 * and then the list route answers at that point (`serializable`: the barrier is passed).
 * Other datacenters are asked with the request as it came, less `failover`, each with an
 * equal share of what is left of the request's deadline; one that cannot be reached, or
 * refuses, is passed over.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isDatacenterName } from '../federation/config.js';
import { forwardToMembers } from '../federation/forward.js';
import { type FederationHost, HOP_HEADER } from '../federation/host.js';
import { acceptsHealth, HEALTH_FILTERS, type HealthFilter } from '../health/index.js';
import type { ServerContext } from './context.js';
import { sendError } from './errors.js';

export const FAILOVER_ROUTE = '/v1/namespaces/:ns/services/:svc/instances';
/** At most this many datacenters after the local one. */
export const MAX_FAILOVER = 8;

export interface FailoverAnswer {
  readonly datacenter: string;
  readonly failovers: number;
}

/** What the list route adds to its body when the local datacenter answers a failover query. */
const localAnswers = new WeakMap<FastifyRequest, FailoverAnswer>();

/** For the list route: the `datacenter` and `failovers` fields to add, when the request asked for failover. */
export function failoverAnswerOf(req: FastifyRequest): FailoverAnswer | undefined {
  return localAnswers.get(req);
}

export interface FailoverContext {
  readonly ctx: ServerContext;
  readonly host: FederationHost | null;
  readonly datacenter: string;
  /** The request's headers as forwarded to another datacenter (hop-by-hop ones left out), without the hop signature. */
  readonly forwardHeaders: (req: FastifyRequest) => Record<string, string>;
  /** Copies a remote answer's headers onto the reply (less hop-by-hop ones). */
  readonly relayHeaders: (res: Response, reply: FastifyReply) => void;
  readonly datacenterHeader: string;
}

/**
 * Handles `failover` on the service list: answers from another datacenter (returns the
 * reply), or leaves the request to the list route (returns undefined) with `failover`
 * removed from its query.
 */
export async function maybeFailover(
  f: FailoverContext,
  req: FastifyRequest,
  reply: FastifyReply,
  query: Record<string, unknown>,
): Promise<FastifyReply | undefined> {
  const raw = query['failover'];
  delete query['failover'];
  if (req.method !== 'GET' || req.routeOptions.url !== FAILOVER_ROUTE)
    return sendError(reply, 'INVALID_ARGUMENT', "failover: only on a service's instance list (GET)", {
      field: 'failover',
    });
  if (typeof raw !== 'string')
    return sendError(reply, 'INVALID_ARGUMENT', 'failover: give it once, as dc2,dc3', { field: 'failover' });
  const names = [...new Set(raw.split(',').map((s) => s.trim()))].filter((n) => n !== f.datacenter);
  if (names.length > MAX_FAILOVER || names.some((n) => !isDatacenterName(n)))
    return sendError(
      reply,
      'INVALID_ARGUMENT',
      `failover: at most ${MAX_FAILOVER} datacenter names (letters, digits and '-'), comma-separated`,
      { field: 'failover' },
    );
  if ('index' in query || 'continue' in query)
    return sendError(
      reply,
      'INVALID_ARGUMENT',
      'failover: not with index or continue (a blocking query or a next page reads one datacenter: name it with dc)',
      { field: 'failover' },
    );
  for (const n of names) {
    if (f.host?.route(n) == null)
      return sendError(
        reply,
        'UNKNOWN_DATACENTER',
        `failover: no datacenter ${JSON.stringify(n)} is known to this federation`,
        { datacenter: n },
      );
  }
  const health = query['health'] ?? 'all';
  const consistency = query['consistency'];
  const minRevision = query['minRevision'];
  // A query the list route will refuse anyway: let it say why.
  if (
    typeof health !== 'string' ||
    !(HEALTH_FILTERS as readonly string[]).includes(health) ||
    (consistency !== undefined && consistency !== 'linearizable' && consistency !== 'serializable') ||
    (minRevision !== undefined && (typeof minRevision !== 'string' || !/^[0-9]{1,15}$/.test(minRevision)))
  )
    return undefined;
  const { ctx } = f;
  const started = performance.now();
  const read = {
    ...(consistency === undefined ? {} : { consistency: consistency as 'linearizable' | 'serializable' }),
    ...(minRevision === undefined ? {} : { minRevision: Number(minRevision) }),
  };
  if (!(await ctx.readPoint(read, reply))) return reply;
  const params = req.params as { ns: string; svc: string };
  const cluster = typeof query['cluster'] === 'string' ? query['cluster'] : undefined;
  const local = () => {
    // The read point is passed: the list route answers from this node's state as it is now.
    query['consistency'] = 'serializable';
    delete query['minRevision'];
  };
  if (hasUsableLocally(ctx, params.ns, params.svc, cluster, health as HealthFilter)) {
    local();
    return answeredLocally(f, req, reply, 0);
  }
  const url = new URL(req.url, 'http://local');
  url.searchParams.delete('failover');
  const failures: string[] = [];
  let asked = 0;
  for (let k = 0; k < names.length; k++) {
    const dc = names[k]!;
    const left = ctx.limits.timeoutMs - (performance.now() - started);
    if (left <= 0) break;
    asked++;
    const members = f.host!.route(dc)?.members ?? [];
    if (members.length === 0) {
      failures.push(`${dc}: every known member is unreachable`);
      continue;
    }
    url.searchParams.set('dc', dc);
    const path = `${url.pathname}${url.search}`;
    const onClose = new AbortController();
    const cancel = () => onClose.abort();
    reply.raw.once('close', cancel);
    const outcome = await forwardToMembers(
      members.map((m) => m.address),
      {
        method: 'GET',
        url: path,
        headers: { ...f.forwardHeaders(req), [HOP_HEADER]: f.host!.hopHeader('GET', path) },
        budgetMs: left / (names.length - k),
        waitMs: 0,
        signal: onClose.signal,
        client: f.host!.client,
      },
    );
    reply.raw.off('close', cancel);
    if (outcome.kind !== 'answer') {
      failures.push(`${dc}: ${outcome.failures.join('; ')}`);
      continue;
    }
    const res = outcome.response;
    const text = await res.text().catch((err: Error) => `unreadable: ${err.message}`);
    if (res.status !== 200) {
      failures.push(`${dc}: HTTP ${res.status}`);
      continue;
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      failures.push(`${dc}: the answer is not JSON`);
      continue;
    }
    if (!Array.isArray(body['instances']) || !body['instances'].some(isUsable)) continue;
    f.relayHeaders(res, reply);
    reply.header(f.datacenterHeader, dc);
    reply.header('content-type', 'application/json; charset=utf-8');
    return reply.code(200).send(JSON.stringify({ ...body, datacenter: dc, failovers: asked }));
  }
  if (failures.length > 0) ctx.logger.debug({ part: 'federation', failures }, 'failover: datacenters passed over');
  local();
  return answeredLocally(f, req, reply, asked);
}

function answeredLocally(f: FailoverContext, req: FastifyRequest, reply: FastifyReply, failovers: number): undefined {
  localAnswers.set(req, { datacenter: f.datacenter, failovers });
  reply.header(f.datacenterHeader, f.datacenter);
  return undefined;
}

/** Whether this node's state holds an instance the request would list and a consumer may call. */
function hasUsableLocally(
  ctx: ServerContext,
  ns: string,
  svc: string,
  cluster: string | undefined,
  health: HealthFilter,
): boolean {
  for (const i of ctx.node.registry.eachInstance(ns, svc)) {
    if (!i.enabled || (cluster !== undefined && i.cluster !== cluster)) continue;
    if (acceptsHealth('usable', i.health) && acceptsHealth(health, i.health)) return true;
  }
  return false;
}

/** An instance of a remote answer (the wire shape) a consumer may call. */
function isUsable(raw: unknown): boolean {
  if (typeof raw !== 'object' || raw === null) return false;
  const i = raw as { enabled?: unknown; health?: unknown };
  return i.enabled !== false && typeof i.health === 'string' && acceptsHealth('usable', i.health);
}
