/**
 * Federation (issue 18, docs/federation.md): the gossip endpoint, the datacenter list and
 * join/leave, and `?dc=NAME` forwarding of every native API request to another datacenter.
 *
 * Forwarding runs as a preValidation hook (body parsed, query not yet validated): a request
 * whose `dc` names another datacenter is sent, as it came (method, path, query, body,
 * Authorization), to a live member of that datacenter — its leader first — trying the
 * members in turn, each attempt with its own share of the request's deadline
 * (src/federation/forward.ts); the answer (status, headers, body, streams included) is
 * relayed with `x-rollcall-datacenter`. A watch is relayed frame by frame and resumes on
 * another member when the one it used fails (src/federation/watch-relay.ts). The same hook
 * handles `?failover=` on a service's instance list (../failover.ts). The remote checks the caller's bearer
 * token against its own token file; the hop is signed with the federation secret
 * (`x-rollcall-federation-hop`), and a signed hop is never forwarded again.
 */
import { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDatacenterName } from '../../federation/config.js';
import { forwardToMembers } from '../../federation/forward.js';
import { type FederationHost, GOSSIP_CONTENT_TYPE, GOSSIP_PATH, HOP_HEADER } from '../../federation/host.js';
import { WatchRelay } from '../../federation/watch-relay.js';
import type { ServerContext } from '../context.js';
import { sendError } from '../errors.js';
import { maybeFailover } from '../failover.js';

export interface FederationRouteOptions {
  /** This cluster's datacenter (`--datacenter`). */
  readonly datacenter: string;
  /** null: federation is off (no `--federation-secret`). */
  readonly host: FederationHost | null;
}

export const DATACENTER_HEADER = 'x-rollcall-datacenter';

const joinBody = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 512,
      pattern: '^https?://',
      description: 'The HTTP address of any node of another datacenter.',
    }),
  },
  { additionalProperties: false },
);

/** Request headers not relayed: hop-by-hop ones, and those the relay sets itself. */
const DROP_REQUEST = new Set([
  'host',
  'connection',
  'keep-alive',
  'content-length',
  'transfer-encoding',
  'upgrade',
  'expect',
  'te',
  'trailer',
  'proxy-connection',
  HOP_HEADER,
]);
const DROP_RESPONSE = new Set([
  'connection',
  'keep-alive',
  'content-length',
  'transfer-encoding',
  'content-encoding',
  'x-rollcall-node',
  'x-rollcall-leader',
  'date',
]);

export function federationRoutes(app: FastifyInstance, ctx: ServerContext, options: FederationRouteOptions): void {
  const { host, datacenter } = options;
  const log = ctx.logger.child({ part: 'federation' });

  app.addContentTypeParser(GOSSIP_CONTENT_TYPE, { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const relays = new Set<WatchRelay>();
  app.addHook('preClose', async () => {
    for (const r of relays) r.close();
  });
  const failover = {
    ctx,
    host,
    datacenter,
    forwardHeaders,
    relayHeaders,
    datacenterHeader: DATACENTER_HEADER,
  };

  app.addHook('preValidation', async (req, reply) => {
    // Before validation, and for every route: the query is whatever the URL said.
    const query = req.query;
    if (!isQueryObject(query)) return;
    if (!('dc' in query)) return 'failover' in query ? maybeFailover(failover, req, reply, query) : undefined;
    const dc = query.dc;
    delete query.dc;
    const hop = req.headers[HOP_HEADER];
    // A hop must be signed with the federation secret: nobody else may pose as another datacenter.
    if (
      hop !== undefined &&
      (host === null || typeof hop !== 'string' || host.verifyHop(hop, req.method, req.url) === null)
    ) {
      log.warn(
        { remote: req.ip, method: req.method, route: req.routeOptions.url },
        'forwarded request refused: its federation hop signature is wrong or stale',
      );
      return sendError(reply, 'UNAUTHENTICATED', `${HOP_HEADER}: not signed with this federation's secret, or stale`);
    }
    const url = req.routeOptions.url ?? '';
    if (dc === datacenter || url.startsWith('/v1/federation') || url === '/v1/catalog/datacenters')
      return 'failover' in query ? maybeFailover(failover, req, reply, query) : undefined;
    if (typeof dc !== 'string' || !isDatacenterName(dc))
      return sendError(reply, 'INVALID_ARGUMENT', "dc: letters, digits and '-', at most 63", { field: 'dc' });
    if (host === null)
      return sendError(
        reply,
        'UNKNOWN_DATACENTER',
        `no datacenter ${JSON.stringify(dc)}: federation is off on this node (no --federation-secret)`,
        { datacenter: dc },
      );
    if (hop !== undefined) {
      // Sent here by another datacenter that thinks this is `dc`: its view is stale. Never forward twice.
      return sendError(
        reply,
        'DATACENTER_UNREACHABLE',
        `this node is in ${datacenter}, not ${dc}; a forwarded request is not forwarded again`,
        { datacenter: dc },
      );
    }
    const route = host.route(dc);
    if (route === null)
      return sendError(reply, 'UNKNOWN_DATACENTER', `no datacenter ${JSON.stringify(dc)} is known to this federation`, {
        datacenter: dc,
      });
    if (route.members.length === 0) return unreachable(reply, dc, 'every known member is unreachable');
    return forward(
      req,
      reply,
      dc,
      route.members.map((m) => m.address),
    );
  });

  function forwardHeaders(req: FastifyRequest): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined && !DROP_REQUEST.has(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    return headers;
  }

  function relayHeaders(res: Response, reply: FastifyReply): void {
    res.headers.forEach((value, key) => {
      if (!DROP_RESPONSE.has(key)) reply.header(key, value);
    });
  }

  /** `?dc=`: one member after another, each with its share of the deadline (src/federation/forward.ts). */
  async function forward(
    req: FastifyRequest,
    reply: FastifyReply,
    dc: string,
    addresses: readonly string[],
  ): Promise<FastifyReply> {
    const headers = forwardHeaders(req);
    const body = bodyOf(req.body);
    const gone = new AbortController();
    const cancel = () => gone.abort();
    reply.raw.once('close', cancel);
    // A client that left while the hooks ran closed the response already ('close' will not
    // come again): nothing is asked for it, or a watch relayed to nobody would hold a stream
    // in that datacenter until this node stops.
    if (reply.raw.destroyed) cancel();
    const send = (to: readonly string[], extra: Record<string, string> = {}) =>
      forwardToMembers(to, {
        method: req.method,
        url: req.url,
        headers: { ...headers, ...extra, [HOP_HEADER]: host!.hopHeader(req.method, req.url) },
        ...(body === undefined ? {} : { body }),
        budgetMs: ctx.limits.timeoutMs,
        waitMs: waitOf(req),
        signal: gone.signal,
        client: host!.client,
      });
    const outcome = await send(addresses);
    if (outcome.kind === 'unreachable') {
      reply.raw.off('close', cancel);
      log.debug({ datacenter: dc, failures: outcome.failures }, 'forwarding failed: no member answered');
      return unreachable(reply, dc, `no member answered (${outcome.failures.join('; ')})`);
    }
    if (outcome.kind === 'ambiguous') {
      reply.raw.off('close', cancel);
      log.info({ datacenter: dc, failures: outcome.failures }, 'forwarded write: outcome unknown');
      return sendError(
        reply,
        'TIMEOUT',
        `datacenter ${dc}: ${outcome.address} did not answer the write in time; its outcome is unknown (read before retrying, or send x-rollcall-client-id so a retry applies once)`,
        { datacenter: dc },
      );
    }
    const res = outcome.response;
    if (isWatch(req) && res.status === 200 && res.body !== null) {
      const relayed: Record<string, string> = {};
      res.headers.forEach((value, key) => {
        if (!DROP_RESPONSE.has(key)) relayed[key] = value;
      });
      relayed[DATACENTER_HEADER] = dc;
      const relay = new WatchRelay({
        datacenter: dc,
        first: outcome,
        after: resumePointOf(req),
        res: reply.raw,
        headers: relayed,
        logger: log,
        reopen: async (after, failed) => {
          // The member that failed last: the failure detector may not have noticed yet.
          const members = (host!.route(dc)?.members ?? []).map((m) => m.address);
          const order = [...members.filter((a) => a !== failed), ...members.filter((a) => a === failed)];
          const again = await send(order, { 'last-event-id': String(after) });
          if (again.kind !== 'answer') return null;
          if (again.response.status === 200 && again.response.body !== null) return again;
          await again.response.body?.cancel().catch(() => undefined);
          return null;
        },
        onEnd: () => {
          relays.delete(relay);
          reply.raw.off('close', cancel);
        },
      });
      relays.add(relay);
      reply.hijack();
      void relay.run().catch((err: unknown) => log.error({ err, datacenter: dc }, 'cross-datacenter watch failed'));
      return reply;
    }
    reply.code(res.status);
    relayHeaders(res, reply);
    reply.header(DATACENTER_HEADER, dc);
    if (res.body === null) return reply.send();
    // Streams go on until either side ends; the client going away aborts the upstream.
    const stream = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    stream.on('error', (err) => log.debug({ err, datacenter: dc }, 'forwarded answer ended early'));
    return reply.send(stream);
  }

  app.post(
    GOSSIP_PATH,
    {
      bodyLimit: 4 * 1024 * 1024,
      config: {
        access: 'public',
        docs: {
          operationId: 'federationGossip',
          tag: 'cluster',
          summary: 'One gossip message between datacenters (authenticated by the federation secret)',
          description:
            "Body: the engine's envelope (`Content-Type: application/vnd.rollcall.federation`), signed with `--federation-secret`. Answered 204 whether accepted or refused (a refused message changes nothing and is logged at most once per interval per source).",
          responses: { 204: { description: 'Received.' } },
          errors: ['INVALID_ARGUMENT', 'FEDERATION_OFF', 'UNSUPPORTED_MEDIA_TYPE', 'BODY_TOO_LARGE'],
        },
      },
    },
    async (req, reply) => {
      if (host === null || !host.active) return sendError(reply, 'FEDERATION_OFF', 'federation is off on this node');
      if (!Buffer.isBuffer(req.body))
        return sendError(reply, 'INVALID_ARGUMENT', `body: send Content-Type: ${GOSSIP_CONTENT_TYPE}`, {
          field: 'body',
        });
      host.receive(req.ip, req.body);
      return reply.code(204).send();
    },
  );

  app.get(
    '/v1/federation',
    {
      config: {
        access: 'read',
        docs: {
          operationId: 'getFederation',
          tag: 'cluster',
          summary: 'Every datacenter this node knows: members, status, round-trip time, last heard',
          description:
            "As this node sees it (the table is gossiped, so it is eventually consistent). `status` is alive, suspect or unreachable; `rttMs` a smoothed round-trip time (0 for our own, null before a sample); `lastHeard` wall-clock ms of the last authenticated message; `clusterId` the cluster id the datacenter's description carries, as its members gossip it (null: a cluster without one, or a description relayed by a build before cluster ids), which changes when the datacenter is refounded, restored or forced into a new cluster (docs/federation.md).",
          responses: {
            200: {
              description: 'The federation.',
              schema: {
                type: 'object',
                properties: {
                  datacenter: { type: 'string' },
                  enabled: { type: 'boolean' },
                  datacenters: { type: 'array', items: { type: 'object' } },
                },
              },
            },
          },
          errors: [],
        },
      },
    },
    async () => {
      const snap = host?.snapshot() ?? null;
      if (host === null || snap === null) {
        return {
          datacenter,
          node: ctx.node.id,
          enabled: false,
          datacenters: [
            {
              name: datacenter,
              local: true,
              status: 'alive',
              leader: ctx.node.leader,
              revision: ctx.node.registry.revision,
              clusterId: ctx.node.clusterId ?? null,
              rttMs: 0,
              lastHeard: null,
              members: [],
            },
          ],
        };
      }
      return {
        datacenter,
        node: snap.nodeId,
        enabled: true,
        incarnation: snap.incarnation,
        datacenters: snap.datacenters.map((d) => ({
          name: d.name,
          local: d.local,
          status: d.status,
          leader: d.leader,
          revision: d.revision,
          clusterId: d.clusterId,
          rttMs: d.rttMs === null ? null : Math.round(d.rttMs * 10) / 10,
          lastHeard: host.toWall(d.lastHeard),
          members: d.members.map((m) => ({
            id: m.id,
            address: m.address,
            role: m.role,
            status: m.status,
            incarnation: m.incarnation,
            lastHeard: host.toWall(m.lastHeard),
          })),
        })),
      };
    },
  );

  app.withTypeProvider<TypeBoxTypeProvider>().post(
    '/v1/federation/join',
    {
      schema: { body: joinBody },
      config: {
        access: 'admin',
        docs: {
          operationId: 'joinFederation',
          tag: 'cluster',
          summary: 'Join another datacenter through one of its nodes (admin)',
          description:
            'This node contacts `url` every gossip round until it answers; the rest of the federation, and the other nodes of this cluster, learn of each other by gossip.',
          responses: { 202: { description: 'Joining.' } },
          errors: ['INVALID_ARGUMENT', 'FEDERATION_OFF'],
        },
      },
    },
    async (req, reply) => {
      if (host === null)
        return sendError(reply, 'FEDERATION_OFF', 'federation is off on this node: start it with --federation-secret');
      host.join(req.body.url);
      return reply.code(202).send({ joining: req.body.url });
    },
  );

  app.delete(
    '/v1/federation',
    {
      config: {
        access: 'admin',
        docs: {
          operationId: 'leaveFederation',
          tag: 'cluster',
          summary: 'This node leaves the federation (admin)',
          description:
            'The node stops gossiping and forgets every other datacenter (its stored list too); the others see it unreachable. `rollcall federation leave` calls it on every member of the cluster. A later join (or a restart with `--federation-join`) brings it back.',
          responses: { 200: { description: 'Left.' } },
          errors: ['FEDERATION_OFF'],
        },
      },
    },
    async (_req, reply) => {
      if (host === null) return sendError(reply, 'FEDERATION_OFF', 'federation is off on this node');
      await host.leave();
      return reply.send({ left: true, node: ctx.node.id });
    },
  );

  app.get(
    '/v1/catalog/datacenters',
    {
      config: {
        access: 'read',
        docs: {
          operationId: 'listDatacenters',
          tag: 'cluster',
          summary: 'Datacenter names, this one first, then by round-trip time (Consul-shaped)',
          responses: { 200: { description: 'Names.', schema: { type: 'array', items: { type: 'string' } } } },
          errors: [],
        },
      },
    },
    async () => host?.datacentersByRtt() ?? [datacenter],
  );
}

function unreachable(reply: FastifyReply, dc: string, why: string): FastifyReply {
  reply.header('retry-after', '1');
  return sendError(reply, 'DATACENTER_UNREACHABLE', `datacenter ${dc} is unreachable: ${why}`, { datacenter: dc });
}

/** A blocking query's `wait` (e.g. `30s`, `500ms`, or ms) extends the deadline for the answer's headers. */
function waitOf(req: FastifyRequest): number {
  const w = isQueryObject(req.query) ? req.query['wait'] : undefined;
  if (typeof w !== 'string') return 0;
  const m = /^(\d+)(ms|s|m)?$/.exec(w);
  if (m === null) return 0;
  const n = Number(m[1]);
  return Math.min(10 * 60_000, m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

/** The event stream route, whose relay resumes on another member (src/federation/watch-relay.ts). */
function isWatch(req: FastifyRequest): boolean {
  return req.method === 'GET' && req.routeOptions.url === '/v1/watch';
}

/** Where the caller's watch starts: after `Last-Event-ID`, or before `fromRevision`; null: at the remote's revision. */
function resumePointOf(req: FastifyRequest): number | null {
  const last = req.headers['last-event-id'];
  if (typeof last === 'string' && /^[0-9]{1,15}$/.test(last)) return Number(last);
  const from = isQueryObject(req.query) ? req.query['fromRevision'] : undefined;
  if (typeof from === 'string' && /^[0-9]{1,15}$/.test(from)) return Math.max(0, Number(from) - 1);
  return null;
}

/** A parsed query string (fastify's parser gives an object; a route's own may not). */
function isQueryObject(query: unknown): query is Record<string, unknown> {
  return typeof query === 'object' && query !== null;
}

function bodyOf(body: unknown): string | Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || Buffer.isBuffer(body)) return body;
  return JSON.stringify(body);
}
