/**
 * The Consul-compatible HTTP API's own fastify app, on its own listener: the hooks every
 * answer shares (plain-text errors, any body read as JSON text, `X-Consul-*` headers) and the
 * route modules. It reads the node through its API (src/server/node-api.ts) and keeps no
 * registry state of its own; its one derived structure, the change feed, follows the node's
 * history (blocking.ts).
 */

import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import Fastify, { LogController } from 'fastify';
import type { Logger } from '../log/index.js';
import { type AccessControl, FailedAuthLimiter } from '../server/acl.js';
import type { TokenAuthority } from '../server/auth.js';
import { decoratePrincipal } from '../server/auth-hook.js';
import { openLister } from '../server/listing/serve.js';
import type { NodeApi } from '../server/node-api.js';
import { aclRoutes } from './acl-routes.js';
import { agentRoutes } from './agent-routes.js';
import { ChangeFeed } from './blocking.js';
import { catalogRoutes } from './catalog-routes.js';
import { sendText } from './errors.js';
import { healthRoutes } from './health-routes.js';
import type { ConsulFederation } from './remote.js';
import { type ConsulContext, LeaderContact } from './request.js';
import { Routes } from './routing.js';
import { DEFAULT_CONSUL_NAMESPACE, DEFAULT_DATACENTER } from './settings.js';
import { statusRoutes } from './status-routes.js';

export interface ConsulAppOptions {
  readonly node: NodeApi;
  readonly logger: Logger;
  readonly datacenter?: string;
  /** `/v1/catalog/datacenters` from the federation (docs/federation.md); absent: just `datacenter`. */
  readonly datacenters?: () => readonly string[];
  /** The federation (`?dc=` reads another datacenter, remote.ts; the datacenter list); absent: off. */
  readonly federation?: ConsulFederation | null;
  /** The Rollcall namespace a request without `?ns=` sees (default `default`). */
  readonly namespace?: string;
  readonly tokens?: TokenAuthority | AccessControl | null;
  /** --auth-failure-limit: failed authentications per source address per minute before 429 (default 30; 0: none). */
  readonly authFailureLimit?: number;
  /** Deadline of a write or a read barrier (default 5 s). */
  readonly timeoutMs?: number;
  /** Blocking queries: the wait when none is given (default 5 min) and the cap (default 10 min). */
  readonly defaultWaitMs?: number;
  readonly maxWaitMs?: number;
  readonly bodyLimit?: number;
  /** Serve HTTPS with these options (--consul-tls-*: src/security); absent: plain HTTP. */
  readonly https?: HttpsServerOptions;
}

export interface ConsulApp {
  readonly app: FastifyInstance;
  readonly feed: ChangeFeed;
}

export function buildConsulApp(options: ConsulAppOptions): ConsulApp {
  const { node } = options;
  const log = options.logger.child({ part: 'consul' });
  const app = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    return503OnClosing: false,
    // Check and service IDs in paths, percent-encoded.
    routerOptions: { maxParamLength: 1024 },
    // A path the router cannot decode (bad percent-encoding, a parameter too long) is answered
    // before any handler: in plain text, as every Consul error, not fastify's JSON.
    frameworkErrors: (err, _req, reply) => {
      const tooLong = (err as FastifyError).code === 'FST_ERR_MAX_PARAM_LENGTH';
      void sendText(
        reply as unknown as FastifyReply,
        400,
        tooLong ? 'Invalid URL path: a path parameter is too long' : 'Invalid URL path: bad percent-encoding',
      );
    },
    // Typed as nothing so the instance keeps the plain-HTTP types (an https.Server is an http.Server here).
    ...((options.https === undefined ? {} : { https: options.https }) as object),
  });
  const feed = new ChangeFeed(node.registry.history, node.registry);
  const timeoutMs = options.timeoutMs ?? 5000;
  const ctx: ConsulContext = {
    node,
    datacenter: options.datacenter ?? DEFAULT_DATACENTER,
    ...(options.datacenters
      ? { datacenters: options.datacenters }
      : options.federation
        ? { datacenters: () => options.federation!.datacentersByRtt() }
        : {}),
    federation: options.federation ?? null,
    namespace: options.namespace ?? DEFAULT_CONSUL_NAMESPACE,
    feed,
    leaderContact: new LeaderContact(node),
    // Shared with the native API's listings (one index per registry); Consul answers are never paginated, so no cap.
    lister: openLister(app, node.registry, { waitMs: timeoutMs }),
    tokens: options.tokens ?? null,
    authFailures: new FailedAuthLimiter(options.authFailureLimit ?? 30),
    logger: log,
    timeoutMs,
    defaultWaitMs: options.defaultWaitMs ?? 5 * 60_000,
    maxWaitMs: options.maxWaitMs ?? 10 * 60_000,
    listenAddress: () => {
      const a = app.server.address();
      return typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host: '', port: 0 };
    },
  };

  decoratePrincipal(app);
  // Consul reads a body as JSON whatever its Content-Type says (curl -d sends a form type).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  let closing = false;
  app.addHook('onRequest', (_req, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    sendText(reply, 503, 'This node is stopping; ask another node');
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header('x-rollcall-node', node.id);
    done(null, payload);
  });
  app.addHook('preClose', async () => {
    closing = true;
    feed.close();
  });

  // Audit, as on the native API (src/server/auth-hook.ts): one line per refused request and per
  // admin write (who by token name, what route, from where, the result), never a secret.
  if (ctx.tokens !== null) {
    const audit = options.logger.child({ part: 'audit', api: 'consul' });
    app.addHook('onResponse', (req, reply, done) => {
      const status = reply.statusCode;
      const refused = status === 401 || status === 403 || status === 429;
      const write = req.method !== 'GET' && req.method !== 'HEAD';
      if (refused || (write && req.routeOptions.config.access === 'admin')) {
        const p = req.principal;
        audit.info(
          {
            principal: p?.name ?? null,
            tokenId: p?.tokenId ?? null,
            method: req.method,
            route: req.routeOptions.url ?? null,
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

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) log.error({ err }, 'Consul API: unexpected error');
    return sendText(reply, status, status === 500 ? 'Internal error (logged by the node)' : err.message);
  });

  const routes = new Routes(app, ctx);
  app.setNotFoundHandler(routes.notFound);
  agentRoutes(routes, ctx);
  catalogRoutes(routes, ctx);
  healthRoutes(routes, ctx);
  statusRoutes(routes, ctx);
  aclRoutes(routes, ctx);
  return { app, feed };
}
