/**
 * One way to declare a Consul route: its method and path, the role it needs, whether it
 * reads a namespace; the wrapper resolves `?dc=` and the namespace, authorizes, runs the
 * handler (or, for another datacenter, its remote form) and answers any error as plain text. The declared routes also tell a wrong
 * method (405, with `Allow`) from a path that is not served (404).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Permission } from '../server/auth.js';
import { ConsulError, notServedMessage, sendConsulError, sendText } from './errors.js';
import { asConsulError } from './node-calls.js';
import {
  authorize,
  type ConsulContext,
  logFailure,
  namespaceOf,
  type Query,
  queryOf,
  remoteDatacenter,
} from './request.js';

export interface Call {
  readonly q: Query;
  /** The Rollcall namespace the request sees (`?ns=`, else the configured one). */
  readonly ns: string;
}

/** A request `?dc=` sends to another datacenter. */
export interface RemoteCall extends Call {
  readonly dc: string;
}

export interface RouteSpec {
  readonly method: 'GET' | 'PUT';
  readonly url: string;
  /** A role, or `token`: any valid token (a token's description of itself). */
  readonly access: Exclude<Permission, 'public'>;
  /** Whether the route reads a namespace (namespace-limited tokens are checked against it). */
  readonly namespaced: boolean;
  /**
   * How a token limited to service prefixes is held to them on this route: `path`, it names
   * one service (`:service`), which the prefixes must cover; `handler`, the handler finds the
   * service (by an instance id, a check, the body) and checks it (requireServiceScope);
   * `filter`, a listing written with only the services they cover (serviceFilter). Absent:
   * the route spans services it cannot scope (nodes), and such a token is refused with 403.
   */
  readonly serviceScope?: 'path' | 'handler' | 'filter';
  readonly handler: (req: FastifyRequest, reply: FastifyReply, call: Call) => Promise<unknown>;
  /** The answer from another datacenter (`?dc=`, remote.ts); absent: this route answers here only. */
  readonly remote?: (req: FastifyRequest, reply: FastifyReply, call: RemoteCall) => Promise<unknown>;
  /**
   * Whether the route still answers on a member a corruption check marked corrupt: only those
   * that read no registry state (the agent's own description, the Raft status), as the native
   * /healthz and /v1/cluster do. Every other route answers 500 there (refuseIfCorrupt).
   */
  readonly servedWhenCorrupt?: boolean;
}

/** What a Consul client sees from a member marked corrupt (under 80 characters: the npm client shows it). */
export const CORRUPT_MESSAGE = "This member's data failed the corruption check; ask another member";

/**
 * The native API refuses reads on a member marked corrupt (src/server/routes/integrity.ts);
 * here writes are refused too, since the agent endpoints resolve a service ID against this
 * member's own state (id-index.ts) before they propose. `?dc=` included: a member taken out
 * of service answers nothing but its status.
 */
function refuseIfCorrupt(ctx: ConsulContext, req: FastifyRequest): void {
  const mark = ctx.node.integrity.selfCorruption;
  if (mark === null) return;
  // The route, not the URL: Consul clients may send their token in the query (`?token=`).
  ctx.logger.debug(
    { method: req.method, route: req.routeOptions.url ?? null, by: mark.by },
    'Consul API: refused, this member is marked corrupt',
  );
  throw new ConsulError(500, CORRUPT_MESSAGE);
}

export class Routes {
  readonly #patterns: { readonly method: string; readonly re: RegExp }[] = [];

  constructor(
    private readonly app: FastifyInstance,
    private readonly ctx: ConsulContext,
  ) {}

  add(spec: RouteSpec): void {
    const { ctx } = this;
    this.#patterns.push({ method: spec.method, re: new RegExp(`^${spec.url.replace(/:[A-Za-z]+/g, '[^/]+')}/?$`) });
    this.app.route({
      method: spec.method,
      url: spec.url,
      // What the audit line reads (app.ts), as on the native API.
      config: { access: spec.access },
      handler: async (req, reply) => {
        try {
          const q = queryOf(req);
          const dc = remoteDatacenter(ctx, q);
          const ns = namespaceOf(ctx, q);
          if (dc !== null && spec.remote === undefined)
            throw new ConsulError(
              400,
              `dc: ${spec.method} ${spec.url} is answered by this node only; Rollcall forwards the catalog and health reads to another datacenter`,
            );
          // Checked here too, as the native API's forwarding does; the other datacenter checks it against its own tokens.
          const service =
            spec.serviceScope === undefined
              ? undefined
              : spec.serviceScope === 'path'
                ? (req.params as { service: string }).service
                : null;
          await authorize(ctx, req, q, spec.access, spec.namespaced ? ns : undefined, service);
          if (spec.servedWhenCorrupt !== true) refuseIfCorrupt(ctx, req);
          if (dc !== null) return await spec.remote!(req, reply, { q, ns, dc });
          return await spec.handler(req, reply, { q, ns });
        } catch (thrown) {
          const err = asConsulError(thrown);
          if (err instanceof ConsulError) return sendConsulError(reply, err);
          try {
            return sendConsulError(reply, err);
          } catch {
            logFailure(ctx.logger, req, err);
            return sendText(reply, 500, 'Internal error (logged by the node)');
          }
        }
      },
    });
  }

  /** The not-found handler: 405 for a declared path with another method, else 404 naming what is not served. */
  notFound = (req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const path = req.url.split('?')[0] ?? req.url;
    const allowed = this.#patterns.filter((p) => p.re.test(path)).map((p) => p.method);
    if (allowed.length > 0)
      return sendText(reply.header('allow', [...new Set(allowed)].join(', ')), 405, `method ${req.method} not allowed`);
    return sendText(reply, 404, notServedMessage(req.method, path));
  };
}
