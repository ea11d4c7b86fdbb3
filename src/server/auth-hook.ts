/**
 * Enforces bearer-token auth on every route, before validation: a request without a valid
 * token gets 401 whatever else is wrong with it. Each route's `config.access` says which
 * role it needs and `config.namespace` where its namespace comes from. Refusals are logged
 * at debug with the token's name, never the token.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log/index.js';
import { type AccessControl, FailedAuthLimiter } from './acl.js';
import { type Principal, TokenAuthority } from './auth.js';
import { sendError, sendNodeError } from './errors.js';
import type { ServerMetrics } from './server-metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Whose token the request carries; null when auth is off or the route is public. */
    principal: Principal | null;
  }
}

const MESSAGES = {
  missing: 'this node requires a bearer token: send Authorization: Bearer <token>',
  malformed: 'the Authorization header must be "Bearer <token>"',
  unknown: 'the bearer token is not valid',
  bootstrap:
    'access control (--acl) is on and not bootstrapped yet: POST /v1/acl/bootstrap (rollcall acl bootstrap) returns the first admin token',
} as const;

/** Every request has `principal` (null until auth finds one), whether auth is on or not. */
export function decoratePrincipal(app: FastifyInstance): void {
  app.decorateRequest('principal', null);
}

/** The secret of `Authorization: Bearer <secret>`; null: the header is there but malformed. */
export function bearerSecret(authorization: string | undefined): string | undefined | null {
  if (authorization === undefined || authorization.length === 0) return undefined;
  const m = /^Bearer +([^\s]+) *$/i.exec(authorization);
  return m === null ? null : m[1]!;
}

export interface AuthOptions {
  /** Failed authentications per source address per minute before 429 (0: no limit). */
  readonly failureLimit: number;
}

export function installAuth(
  app: FastifyInstance,
  control: AccessControl,
  metrics: ServerMetrics,
  logger: Logger,
  options: AuthOptions = { failureLimit: 0 },
): void {
  const limiter = new FailedAuthLimiter(options.failureLimit);
  const audit = logger.child({ part: 'audit' });
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url;
    if (route === undefined) return; // no such route: 404 says nothing secret
    const config = req.routeOptions.config;
    // A route that forgot to declare its access is admin-only: fail closed.
    const need = config.access ?? 'admin';
    if (need === 'public') return;
    const blocked = limiter.blockedFor(req.ip);
    if (blocked > 0) {
      metrics.authFailures.inc({ reason: 'rate_limited' });
      reply.header('retry-after', String(blocked));
      return sendError(
        reply,
        'RATE_LIMITED',
        `too many failed authentications from ${req.ip}: retry after ${blocked} s`,
      );
    }
    const secret = bearerSecret(req.headers.authorization);
    const id = secret === null ? ({ ok: false, reason: 'malformed' } as const) : await control.identify(secret);
    if (!id.ok) {
      if (id.reason === 'unavailable') return sendNodeError(reply, id.error);
      // A secret was tried and failed: that is what a guesser does, so it counts.
      if (secret !== undefined) limiter.fail(req.ip);
      metrics.authFailures.inc({ reason: id.reason });
      logger.debug(
        { reason: id.reason, method: req.method, route, remote: req.ip },
        'request refused: not authenticated',
      );
      reply.header(
        'www-authenticate',
        id.reason === 'missing' || id.reason === 'bootstrap'
          ? 'Bearer realm="rollcall"'
          : 'Bearer realm="rollcall", error="invalid_token"',
      );
      return sendError(reply, 'UNAUTHENTICATED', MESSAGES[id.reason]);
    }
    const namespace = namespaceOf(req, config.namespace);
    const svc = (req.params as Record<string, unknown> | undefined)?.['svc'];
    const decision = TokenAuthority.authorize(id.principal, need, namespace, typeof svc === 'string' ? svc : undefined);
    // Set before a refusal too, so the audit line says whose token was refused.
    req.principal = id.principal;
    if (!decision.ok) {
      metrics.authFailures.inc({ reason: 'forbidden' });
      logger.debug(
        { principal: id.principal.name, method: req.method, route, namespace },
        'request refused: forbidden',
      );
      return sendError(reply, 'FORBIDDEN', decision.message);
    }
    // Routes that act on a session check it against the token's namespaces (session-scope.ts).
  });

  // Audit: one line per admin write, token change and refused request (who by token name,
  // what route, from where, the result), never a secret (docs/security.md, "Audit").
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url;
    const status = reply.statusCode;
    const write = req.method !== 'GET' && req.method !== 'HEAD';
    const refused = status === 401 || status === 403 || status === 429;
    const acl = route?.startsWith('/v1/acl/');
    if (refused || acl || (write && req.routeOptions.config.access === 'admin')) {
      const p = req.principal;
      audit.info(
        {
          principal: p?.name ?? null,
          tokenId: p?.tokenId ?? null,
          method: req.method,
          route: route ?? null,
          remote: req.ip,
          status,
          result: refused ? 'refused' : status < 400 ? 'ok' : 'failed',
        },
        'audit',
      );
    }
    done();
  });
}
function namespaceOf(req: FastifyRequest, from: 'params' | 'query' | undefined): string | null | undefined {
  if (from === 'params') {
    const ns = (req.params as Record<string, unknown> | undefined)?.['ns'];
    return typeof ns === 'string' ? ns : null;
  }
  if (from === 'query') {
    const ns = (req.query as Record<string, unknown> | undefined)?.['namespace'];
    return typeof ns === 'string' ? ns : null;
  }
  return undefined;
}
