/**
 * The HTTP API of one node (fastify). Every node serves every route: writes are
 * forwarded to the leader, reads are linearizable by default (ReadIndex, then wait for
 * apply) or served locally with `?consistency=serializable` or `?minRevision=N`, and
 * watches stream from this node's applied state.
 *
 * Every response carries `x-rollcall-revision` (the revision the answer reflects),
 * `x-rollcall-node` (who answered) and `x-rollcall-leader` (who leads, if known).
 *
 * Wiring only: routes live in routes/, the watch hub in watch/, auth in auth*.ts.
 */

import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import Fastify, { LogController } from 'fastify';
import type { TrackedHealth, WebhookPoster } from '../health/index.js';
import type { Logger } from '../log/index.js';
import { NodeError } from '../node/index.js';
import type { HandshakeRefusals } from '../security/index.js';
import type { TokenAuthority } from './auth.js';
import { decoratePrincipal, installAuth } from './auth-hook.js';
import { type Limits, ServerContext } from './context.js';
import { beforeEarlyAnswer, clientErrorHandler, installEdge, keepConnection, refuseBody } from './edge.js';
import { sendError, sendNodeError } from './errors.js';
import type { NodeApi } from './node-api.js';
import { OpenApiBuilder } from './openapi.js';
import type { LoadShedderOptions } from './overload.js';
import { LoadShedder, registerLoadShedding } from './overload.js';
import './route-config.js';
import { registerUiRoutes } from '../ui/index.js';
import { AccessControl } from './acl.js';
import { accessRuleRoutes } from './routes/access-rules.js';
import { aclRoutes } from './routes/acl.js';
import { clusterRoutes } from './routes/cluster.js';
import { type FederationRouteOptions, federationRoutes } from './routes/federation.js';
import { healthRoutes, type RelayFetch } from './routes/health.js';
import { healthPolicyWriter } from './routes/health-policy.js';
import { instanceRoutes } from './routes/instances/index.js';
import { integrityRoutes, refuseReadsWhenCorrupt } from './routes/integrity.js';
import { membershipRoutes } from './routes/membership.js';
import { operationRoutes } from './routes/operations.js';
import { prometheusSdRoutes } from './routes/prometheus-sd.js';
import { serviceRoutes } from './routes/services.js';
import { sessionRoutes } from './routes/sessions.js';
import { snapshotRoutes } from './routes/snapshot.js';
import { type FaultableNode, testFaultRoutes } from './routes/test-faults.js';
import { watchRoutes } from './routes/watch.js';
import { ServerMetrics } from './server-metrics.js';
import { installValidation } from './validation.js';
import { RevisionWaiters, ServiceWaiters } from './waiters.js';
import { WatchHub, type WatchHubOptions } from './watch/hub.js';

export interface AppOptions {
  readonly node: NodeApi;
  readonly logger: Logger;
  /** Deadline for a write or a linearizable read, in ms (default 5000). */
  readonly requestTimeoutMs?: number;
  readonly bodyLimit?: number;
  /** Bearer-token auth; off when absent. */
  readonly tokens?: TokenAuthority | null;
  /** --acl: replicated access tokens (src/server/acl.ts); with `tokens`, those are break-glass. */
  readonly acl?: boolean;
  /** Failed authentications per source address per minute before 429 (default 30; 0: no limit). */
  readonly authFailureLimit?: number;
  readonly watch?: WatchHubOptions;
  /** Longest a `?minRevision` read waits (default: requestTimeoutMs). */
  readonly minRevisionTimeoutMs?: number;
  /** Blocking queries: the wait when none is given (default 5 min) and the cap (default 10 min). */
  readonly defaultWaitMs?: number;
  readonly maxWaitMs?: number;
  /** /readyz: most committed-but-unapplied entries a ready node may have (default 100). */
  readonly readyMaxLag?: number;
  /** /readyz: how long it waits to confirm with the leader that this node has caught up (default 800 ms, under a Kubernetes probe's 1-s timeout). */
  readonly readyWaitMs?: number;
  /** Serve PUT /v1/test/faults (ROLLCALL_TEST_FAULTS=1 only). */
  readonly testRoutes?: boolean;
  /** The leader's health reports (RollcallNode.healthReports); absent: /v1/health/reports has none. */
  readonly healthReports?: () => readonly TrackedHealth[] | null;
  /** Where the leader posts fired and resolved alerts. */
  readonly alertWebhook?: WebhookPoster | null;
  /** The most items one listing answer (or page) may hold (default 10,000): larger listings must be paginated. */
  readonly listMaxItems?: number;
  /** Load shedding (overload.ts); absent: off. */
  readonly overload?: LoadShedderOptions;
  /** Requests one keep-alive connection may make before it is closed (0 or absent: no limit). */
  readonly maxRequestsPerConnection?: number;
  /** Serve HTTPS with these options (certificate, key, client CA: src/security); absent: plain HTTP. */
  readonly https?: HttpsServerOptions;
  /** With `https`: where refused handshakes are logged and counted (docs/security.md). */
  readonly tlsRefusals?: HandshakeRefusals;
  /** How a follower relays GET /v1/health/reports to the leader (over HTTPS with TLS on); default: global fetch. */
  readonly relayFetch?: RelayFetch;
  /** Federation (docs/federation.md): the datacenter and the gossip host; absent: datacenter dc1, federation off. */
  readonly federation?: FederationRouteOptions;
}

export const API_VERSION = '1.0.0';

declare module 'fastify' {
  interface FastifyInstance {
    /** The API description being built from the routes (served at /openapi.json). */
    readonly openapi: OpenApiBuilder;
  }
}

export function buildApp(options: AppOptions): FastifyInstance {
  const { node } = options;
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const limits: Limits = {
    timeoutMs,
    minRevisionTimeoutMs: options.minRevisionTimeoutMs ?? timeoutMs,
    defaultWaitMs: options.defaultWaitMs ?? 5 * 60_000,
    maxWaitMs: options.maxWaitMs ?? 10 * 60_000,
    readyMaxLag: options.readyMaxLag ?? 100,
    readyWaitMs: options.readyWaitMs ?? 800,
    ...(options.listMaxItems === undefined ? {} : { listMaxItems: options.listMaxItems }),
  };
  const log = options.logger.child({ part: 'http' });
  const bodyLimit = options.bodyLimit ?? 256 * 1024;
  const app = Fastify({
    loggerInstance: log as unknown as FastifyBaseLogger,
    // Requests are not logged one by one: a busy registry must not flood the on-call log.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    ...(options.maxRequestsPerConnection ? { maxRequestsPerSocket: options.maxRequestsPerConnection } : {}),
    ...httpsOption(options.https),
    // Answers for what Node's HTTP parser refuses, in the catalogue shape (edge.ts).
    clientErrorHandler: clientErrorHandler({ nodeId: node.id, logger: log }),
    // Fastify's own 503 while closing is not in the catalogue shape; the hook below answers.
    return503OnClosing: false,
    // Instance ids are up to 256 characters, percent-encoded up to three times that.
    routerOptions: { maxParamLength: 1024 },
    frameworkErrors: (err, req, reply) => {
      const code = (err as FastifyError).code;
      const what =
        code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? 'a path parameter is too long'
          : 'the path is not valid (bad percent-encoding?)';
      // Answered before any hook runs: drain the body here, as the edge's onSend hook would.
      beforeEarlyAnswer(req.raw, reply as unknown as FastifyReply);
      void sendError(reply as unknown as FastifyReply, 'INVALID_ARGUMENT', `path: ${what}`, { field: 'path' });
    },
  });

  const hub = new WatchHub(node.registry.history, {
    ...options.watch,
    onCut: (info) =>
      log.info(
        { filter: info.filter, fromRevision: info.fromRevision, bufferedBytes: info.bufferedBytes },
        'watch cut: the client reads too slowly',
      ),
    // Fan-out runs on a later turn than the apply that feeds it, so metrics (made below) exist by then.
    onFanOut: (seconds) => metrics.watchFanOut.observe(seconds),
  });
  const revisions = new RevisionWaiters(node.registry.history);
  const services = new ServiceWaiters(node.registry.history);
  const tlsRefusals = options.tlsRefusals;
  const metrics = new ServerMetrics(node, {
    watch: () => hub.stats(),
    blockingQueries: () => services.size,
    revisionWaits: () => revisions.size,
    ...(tlsRefusals === undefined ? {} : { tlsRefusals: () => tlsRefusals.totals() }),
  });
  if (options.https !== undefined) tlsRefusals?.watch(app.server as unknown as TlsServer, 'api');
  const ctx = new ServerContext(node, log, limits, hub, revisions, services, metrics);
  const openapi = new OpenApiBuilder({
    title: 'Rollcall',
    version: API_VERSION,
    description: 'A strongly consistent service registry. Every node serves every route. See docs/api.md.',
  });

  app.addHook('onRoute', openapi.collect);
  app.decorate('openapi', openapi);
  installValidation(app);
  decoratePrincipal(app);
  // Before auth: a body over the limit is refused whoever sends it, and a stopping node sheds.
  installEdge(app, { nodeId: node.id, bodyLimit, logger: log });
  app.addHook('onRequest', (_req, reply, done) => {
    if (!ctx.closing) return done();
    reply.header('connection', 'close');
    sendError(reply, 'SHUTTING_DOWN', 'this node is stopping; send the request to another node');
  });
  refuseReadsWhenCorrupt(app, node);
  // Before auth and any work: a node past its limits answers 503 OVERLOADED at once.
  const shedder = options.overload
    ? new LoadShedder(options.overload, { pendingWork: () => node.pendingWork?.() ?? 0 })
    : null;
  if (shedder) {
    shedder.start();
    registerLoadShedding(app, shedder);
  }
  const access = new AccessControl(options.tokens ?? null, options.acl ? { node, timeoutMs } : null);
  if (access.on) installAuth(app, access, metrics, log, { failureLimit: options.authFailureLimit ?? 30 });

  // Callback style, not async: an async hook costs every response a promise and a microtask.
  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header('x-rollcall-node', node.id);
    if (node.leader) reply.header('x-rollcall-leader', node.leader);
    if (!reply.hasHeader('x-rollcall-revision')) reply.header('x-rollcall-revision', String(node.registry.revision));
    done(null, payload);
  });

  app.addHook('onResponse', (req, reply, done) => {
    metrics.observeHttp(req.method, req.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });

  app.addHook('preClose', async () => {
    ctx.closing = true;
    shedder?.close();
    hub.close();
    services.close();
    revisions.close();
    metrics.close();
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      const v = err.validation[0];
      const field = validationField(err.validationContext ?? 'body', v);
      return sendError(reply, 'INVALID_ARGUMENT', `${field}: ${v?.message ?? 'is invalid'}`, { field });
    }
    if (err instanceof NodeError) return sendNodeError(reply, err);
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        // A chunked body past the limit (one with a Content-Length over it never gets here).
        return refuseBody(
          reply,
          `body: over the limit of ${req.routeOptions.bodyLimit ?? bodyLimit} bytes`,
          req.routeOptions.bodyLimit ?? bodyLimit,
        );
      // Fastify closes the connection after a body it could not parse; the body has been
      // read (or the edge drains it), so the connection can go on, and a request pipelined
      // behind this one is answered rather than served and dropped with the connection.
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        keepConnection(reply);
        return sendError(reply, 'UNSUPPORTED_MEDIA_TYPE', `${err.message}; send Content-Type: application/json`);
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        keepConnection(reply);
        return sendError(reply, 'INVALID_JSON', `body: ${err.message}`, { field: 'body' });
    }
    if (err instanceof SyntaxError) {
      keepConnection(reply);
      return sendError(reply, 'INVALID_JSON', `body: ${err.message}`, { field: 'body' });
    }
    if (err.statusCode === 413) return refuseBody(reply, err.message, req.routeOptions.bodyLimit ?? bodyLimit);
    // Any other client error fastify finds (a bad content-length, ...): one catalogue code.
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
      return sendError(reply, 'INVALID_ARGUMENT', err.message);
    log.error({ err }, 'unexpected error serving a request');
    return sendError(reply, 'INTERNAL', 'internal error');
  });

  app.setNotFoundHandler((req, reply) =>
    sendError(reply, 'ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`),
  );

  // First: its preValidation hook forwards `?dc=<another datacenter>` before any route's validation.
  federationRoutes(app, ctx, options.federation ?? { datacenter: 'dc1', host: null });
  sessionRoutes(app, ctx);
  instanceRoutes(app, ctx);
  accessRuleRoutes(app, ctx);
  aclRoutes(app, ctx, options.acl === true);
  watchRoutes(app, ctx);
  clusterRoutes(app, ctx);
  operationRoutes(app, ctx, openapi);
  membershipRoutes(app, ctx);
  prometheusSdRoutes(app, ctx);
  snapshotRoutes(app, ctx);
  integrityRoutes(app, ctx);
  if (options.testRoutes) testFaultRoutes(app, faultableNode(node));
  registerUiRoutes(app);
  serviceRoutes(app, { node, timeoutMs, listMaxItems: options.listMaxItems });
  healthRoutes(app, {
    node,
    logger: log,
    timeoutMs: 2000,
    // The replicated policy (setHealthPolicy); PUT proposes it through this node.
    policy: () => node.registry.healthPolicy(),
    setPolicy: healthPolicyWriter(ctx),
    ...(options.healthReports ? { reports: options.healthReports } : {}),
    ...(options.alertWebhook ? { webhook: options.alertWebhook } : {}),
    ...(options.relayFetch ? { relayFetch: options.relayFetch } : {}),
  });

  return app;
}

/**
 * Fastify's `https` option: `app.server` is then an https.Server (whose setSecureContext a
 * certificate reload calls), with the same timeouts and limits fastify gives an HTTP one.
 * Typed as nothing so the instance keeps the plain-HTTP types: an https.Server is an
 * http.Server to everything that uses it here.
 */
function httpsOption(https: HttpsServerOptions | undefined): object {
  return https === undefined ? {} : { https };
}

function faultableNode(node: NodeApi): FaultableNode {
  const { setFaults } = node;
  if (setFaults === undefined) throw new Error('testRoutes: this node cannot inject faults (it has no setFaults)');
  const { corruptStateForTest } = node as { corruptStateForTest?: FaultableNode['corruptStateForTest'] };
  return {
    id: node.id,
    setFaults: (faults) => setFaults.call(node, faults),
    ...(corruptStateForTest
      ? { corruptStateForTest: (k: string, v: string) => corruptStateForTest.call(node, k, v) }
      : {}),
  };
}

function validationField(
  context: string,
  v: { instancePath?: string; params?: Record<string, unknown> } | undefined,
): string {
  const path = (v?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const missing = v?.params?.missingProperty as string | undefined;
  const extra = v?.params?.additionalProperty as string | undefined;
  const leaf = missing ?? extra;
  const full = [path, leaf].filter(Boolean).join('.');
  return full || context;
}
