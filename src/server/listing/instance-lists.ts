/**
 * GET /v1/namespaces/{ns}/services/{svc}/instances and GET /v1/namespaces/{ns}/instances:
 * the handlers, paginated and written in slices (serve.ts).
 */
import type { FastifyReply } from 'fastify';
import { acceptsHealth } from '../../health/index.js';
import type { ServerContext } from '../context.js';
import { sendError } from '../errors.js';
import { failoverAnswerOf } from '../failover.js';
import type { NamespaceListQuery, ServiceListQuery } from '../schemas.js';
import { encodeContinue, listingSignature } from './continue-token.js';
import { matching } from './counts.js';
import { rangeEnd, rangeStart, serviceSortKey } from './instance-index.js';
import { capturing, type Lister, openPage, sendEncoded, sendView } from './serve.js';
import { instancesWriter } from './writers.js';

/** A service's revision now: the index's, or for an absent service the registry's stand-in (see RegistryState.emptiedRevision). */
function serviceRevisionNow(ctx: ServerContext, lister: Lister, ns: string, svc: string): number {
  return (
    lister.index.services.get(serviceSortKey(ns, svc))?.revision ??
    ctx.node.registry.listInstances(ns, svc).serviceRevision
  );
}

export async function listServiceInstances(
  ctx: ServerContext,
  lister: Lister,
  ns: string,
  svc: string,
  q: ServiceListQuery,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const includeDisabled = q.includeDisabled === true;
  const health = q.health ?? 'all';
  const listing = listingSignature('service', { ns, svc, cluster: q.cluster, includeDisabled, health });
  let serviceRevision = 0;
  const page = await openPage(lister, reply, q, listing, {
    beforeNext: () => {
      if (q.index === undefined) return true;
      sendError(reply, 'INVALID_ARGUMENT', 'index: a blocking query waits on the first page only, not with continue', {
        field: 'index',
      });
      return false;
    },
    reach: async () => {
      if (!(await ctx.readPoint(q, reply))) return false;
      serviceRevision = await blockingWait(ctx, lister, ns, svc, q, reply);
      return true;
    },
    count: () => {
      const stats = lister.index.services.get(serviceSortKey(ns, svc));
      const counts = q.cluster === undefined ? stats?.all : stats?.clusters.get(q.cluster);
      return counts === undefined ? 0 : matching(counts, includeDisabled, health);
    },
    items: 'instances',
    restart: (token, revision) => ({ ...token, revision, serviceRevision: serviceRevisionNow(ctx, lister, ns, svc) }),
  });
  if (page === null) return reply;
  if (page.token !== null) serviceRevision = page.token.serviceRevision ?? 0;
  const at = page.view;
  const prefix =
    q.cluster === undefined ? `${serviceSortKey(ns, svc)}\0` : `${serviceSortKey(ns, svc)}\0${q.cluster}\0`;
  reply.header('x-rollcall-index', String(serviceRevision));
  // `?failover=` answered here (src/server/failover.ts): say which datacenter, as a remote answer does.
  const failover = failoverAnswerOf(reply.request);
  const answered =
    failover === undefined
      ? ''
      : `,"datacenter":${JSON.stringify(failover.datacenter)},"failovers":${failover.failovers}`;
  const head = `{"revision":${at.revision},"serviceRevision":${serviceRevision}${answered},"instances":[`;
  const writer = instancesWriter({
    view: at,
    after: rangeStart(prefix, page.token?.after),
    end: rangeEnd(prefix),
    limit: page.limit,
    head: head.slice(0, -',"instances":['.length),
    pass: (i) => (includeDisabled || i.enabled) && acceptsHealth(health, i.health),
    token: (after) => encodeContinue({ revision: at.revision, after, listing, serviceRevision }),
  });
  // A whole answer (no page) shares its instances with every other one of the same service
  // at the same service revision and filters (body-cache.ts); a page is written as it is.
  const stats = lister.index.services.get(serviceSortKey(ns, svc));
  if (page.token !== null || page.limit !== null || stats === undefined || at.serviceChanged(ns, svc))
    return sendView(lister, reply, at, writer);
  const revisionAtView = stats.revision;
  const key = `${serviceSortKey(ns, svc)}\0${q.cluster === undefined ? '*' : `=${q.cluster}`}\0${includeDisabled}\0${health}`;
  const body = lister.bodies.get(key, revisionAtView);
  if (body !== undefined) return sendEncoded(lister, reply, at, [Buffer.from(head), ...body, TAIL_BYTES]);
  return sendView(
    lister,
    reply,
    at,
    capturing(writer, head, TAIL, (text) => lister.bodies.put(key, revisionAtView, text)),
  );
}

/** The end of a whole answer (no `continue`: it has no page). */
const TAIL = ']}';
const TAIL_BYTES = Buffer.from(TAIL);

/**
 * A blocking query: with `index` equal to the service's revision, waits until a change
 * touches the service (or `wait` ends, or the client goes away). Returns the service's
 * revision to answer with.
 */
async function blockingWait(
  ctx: ServerContext,
  lister: Lister,
  ns: string,
  svc: string,
  q: ServiceListQuery,
  reply: FastifyReply,
): Promise<number> {
  const serviceRevision = serviceRevisionNow(ctx, lister, ns, svc);
  if (q.index === undefined || serviceRevision !== q.index || ctx.closing) return serviceRevision;
  const wanted = q.wait === undefined ? ctx.limits.defaultWaitMs : parseWait(q.wait);
  const capped = Math.min(wanted, ctx.limits.maxWaitMs);
  // Consul's jitter: up to 1/16 more, so many waiters do not all come back at once.
  const waitMs = capped + Math.floor(Math.random() * (capped / 16));
  const abort = new AbortController();
  const onClose = () => abort.abort();
  reply.raw.once('close', onClose);
  await ctx.services.wait(ns, svc, waitMs, abort.signal);
  reply.raw.off('close', onClose);
  return serviceRevisionNow(ctx, lister, ns, svc);
}

export async function listNamespaceInstances(
  ctx: ServerContext,
  lister: Lister,
  ns: string,
  q: NamespaceListQuery,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const includeDisabled = q.includeDisabled === true;
  const health = q.health ?? 'all';
  const listing = listingSignature('namespace', { ns, includeDisabled, health });
  const page = await openPage(lister, reply, q, listing, {
    reach: () => ctx.readPoint(q, reply),
    count: () => matching(lister.index.namespaceCounts(ns), includeDisabled, health),
    items: 'instances',
  });
  if (page === null) return reply;
  const at = page.view;
  return sendView(
    lister,
    reply,
    at,
    instancesWriter({
      view: at,
      after: rangeStart(`${ns}\0`, page.token?.after),
      end: rangeEnd(`${ns}\0`),
      limit: page.limit,
      head: `{"revision":${at.revision}`,
      pass: (i) => (includeDisabled || i.enabled) && acceptsHealth(health, i.health),
      token: (after) => encodeContinue({ revision: at.revision, after, listing }),
    }),
  );
}

/** A blocking query's `wait`: `500ms`, `30s`, `5m` (the schema has checked the shape). */
export function parseWait(s: string): number {
  const m = /^([0-9]+)(ms|s|m)$/.exec(s);
  if (!m) return 0;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}
