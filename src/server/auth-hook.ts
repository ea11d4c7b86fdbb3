/**
 * Enforces bearer-token auth on every route, before validation: a request without a valid
 * token gets 401 whatever else is wrong with it. Each route's `config.access` says which
 * role it needs and `config.namespace` where its namespace comes from. Refusals are logged
 * at debug with the token's name, never the token.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log/index.js';
import { type Principal, TokenAuthority } from './auth.js';
import { sendError } from './errors.js';
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
} as const;

/** Every request has `principal` (null until auth finds one), whether auth is on or not. */
export function decoratePrincipal(app: FastifyInstance): void {
  app.decorateRequest('principal', null);
}

export function installAuth(app: FastifyInstance, authority: TokenAuthority, metrics: ServerMetrics, logger: Logger): void {
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const route = req.routeOptions.url;
    if (route === undefined) return; // no such route: 404 says nothing secret
    const config = req.routeOptions.config;
    // A route that forgot to declare its access is admin-only: fail closed.
    const need = config.access ?? 'admin';
    if (need === 'public') return;
    const id = authority.identify(req.headers.authorization);
    if (!id.ok) {
      metrics.authFailures.inc({ reason: id.reason });
      logger.debug({ reason: id.reason, method: req.method, route, remote: req.ip }, 'request refused: not authenticated');
      reply.header('www-authenticate', id.reason === 'missing' ? 'Bearer realm="rollcall"' : 'Bearer realm="rollcall", error="invalid_token"');
      return sendError(reply, 'UNAUTHENTICATED', MESSAGES[id.reason]);
    }
    const namespace = namespaceOf(req, config.namespace);
    const decision = TokenAuthority.authorize(id.principal, need, namespace);
    if (!decision.ok) {
      metrics.authFailures.inc({ reason: 'forbidden' });
      logger.debug({ principal: id.principal.name, method: req.method, route, namespace }, 'request refused: forbidden');
      return sendError(reply, 'FORBIDDEN', decision.message);
    }
    // Routes that act on a session check it against the token's namespaces (session-scope.ts).
    req.principal = id.principal;
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
