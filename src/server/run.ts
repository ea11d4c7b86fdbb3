/**
 * `rollcall server`: one node process. Starts storage, Raft, the peer transport and the
 * HTTP API; SIGTERM and SIGINT finish in-flight work, close LevelDB and exit; SIGHUP
 * reloads TLS certificates and keys, and the DNS token file (docs/security.md).
 */
import type { Server as HttpsServer } from 'node:https';
import { type ConsulApi, startConsulFromConfig } from '../consul/index.js';
import {
  type DnsServer,
  DnsTokenFileError,
  DnsTokenReload,
  dnsTokenProblem,
  readDnsToken,
  startDnsFromConfig,
} from '../dns/index.js';
import { FederationHost } from '../federation/host.js';
import { FederationHttpClient } from '../federation/http-client.js';
import { WebhookPoster } from '../health/index.js';
import { createLogger } from '../log/index.js';
import { RollcallNode } from '../node/index.js';
import {
  HandshakeRefusals,
  httpsRelayFetch,
  type LoadedTls,
  loadTlsAtStart,
  secureContextOptions,
  serverTlsOptions,
  startMaterial,
  type TlsMaterial,
  TlsReloader,
  TlsStartError,
} from '../security/index.js';
import { AccessControl } from './acl.js';
import { buildApp } from './app.js';
import { TokenAuthority, TokenFileError } from './auth.js';
import { ConfigError, type ServerConfig } from './config.js';
import { ProbeListener } from './probes/index.js';

export async function runServer(config: ServerConfig): Promise<void> {
  const logger = createLogger({ level: config.logLevel, name: config.id });
  let stopping = false;
  let consul: ConsulApi | null = null;
  let dns: DnsServer | null = null;
  let probes: ProbeListener | null = null;
  // Before anything else starts: a bad token file must stop the node, not leave it open.
  let tokens: TokenAuthority | null = null;
  if (config.tokenFile !== null) {
    try {
      tokens = await TokenAuthority.load(config.tokenFile);
    } catch (err) {
      if (err instanceof TokenFileError) throw new ConfigError('--token-file', err.message);
      throw err;
    }
    logger.info({ tokenFile: config.tokenFile, tokens: tokens.summary() }, 'bearer-token auth is on');
  }
  if (config.acl)
    logger.info(
      { breakGlass: tokens !== null, authFailureLimit: config.authFailureLimit },
      'replicated access control is on (--acl)',
    );
  // The DNS token (--dns-token-file), likewise before anything listens; its secret is never logged.
  let dnsToken: string | null = null;
  if (config.dns.listen !== null && config.dns.tokenFile != null) {
    if (!config.acl && tokens === null)
      throw new ConfigError('--dns-token-file', 'needs --acl or --token-file: without them DNS checks no token');
    try {
      dnsToken = await readDnsToken(config.dns.tokenFile);
    } catch (err) {
      if (err instanceof DnsTokenFileError) throw new ConfigError('--dns-token-file', err.message);
      throw err;
    }
    // A token these checks can never accept for reading stops the node; one that may yet be
    // replicated here starts it, with a warning (src/dns/access.ts, dnsTokenProblem).
    const problem = dnsTokenProblem(dnsToken, { file: tokens, acl: config.acl });
    if (problem !== null) throw new ConfigError('--dns-token-file', `${config.dns.tokenFile} ${problem}`);
  }
  // Likewise TLS: an unreadable, mismatched, expired or not-yet-valid certificate stops the
  // node with a log line naming the file, before anything listens.
  let reloadable: LoadedTls;
  try {
    reloadable = loadTlsAtStart(config.tls, logger);
  } catch (err) {
    if (err instanceof TlsStartError) throw new ConfigError(err.setting, err.message);
    throw err;
  }
  // The client side of the links to other datacenters (--federation-tls-*), checked likewise.
  let federationClient: FederationHttpClient | null = null;
  if (config.federation?.tls) {
    try {
      federationClient = FederationHttpClient.load(config.federation.tls, logger);
    } catch (err) {
      if (err instanceof TlsStartError) throw new ConfigError(err.setting, err.message);
      throw err;
    }
  }
  // What each listener starts with; `reloadable` has what is in force after a reload.
  const tls = startMaterial(reloadable);
  const scheme = tls.api === null ? 'http' : 'https';
  // Refused handshakes on the TLS listeners: one rate-limited warning each, and the metric.
  const tlsRefusals = new HandshakeRefusals({ logger });
  // The leader's health tracker decides with the replicated policy, read on every report so
  // a newly applied one counts at once. The registry exists only once start() returns; the
  // node cannot lead (its ticks start last) and so decides nothing before that.
  let started: RollcallNode | null = null;
  if (config.forceNewCluster) {
    const { forceNewCluster, ForceNewClusterError } = await import('../ops/force-new-cluster.js');
    try {
      await forceNewCluster({ dataDir: config.data, id: config.id, logger });
    } catch (err) {
      if (err instanceof ForceNewClusterError) throw new ConfigError('--force-new-cluster', err.message);
      throw err;
    }
  }
  const node = await RollcallNode.start({
    id: config.id,
    dataDir: config.data,
    peers: config.peers,
    peerListen: config.peerListen,
    secret: config.clusterSecret,
    ...(tls.peer === null ? {} : { peerTls: peerTlsOptions(tls.peer) }),
    logger,
    join: config.join,
    ...(config.initialClusterToken === null ? {} : { initialClusterToken: config.initialClusterToken }),
    tickMs: config.tickMs,
    electionTicks: config.electionTicks,
    compactEvery: config.compactEvery,
    corruptionCheckIntervalMs: config.corruptionCheckIntervalMs,
    faults: config.testFaults,
    advertiseHttp: `${scheme}://${config.listen.host}:${config.listen.port}`,
    healthPolicy: () => started?.registry.healthPolicy()?.policy ?? null,
    onFatal: () => {
      void shutdown(70);
    },
  });
  started = node;
  // The peer port logs its refusals itself; they count with the listeners' ones.
  node.transport.onTlsRefused((refusal) => tlsRefusals.count(refusal));
  // Federation (--federation-secret): gossip to the other datacenters through this node's HTTP API.
  let federation: FederationHost | null = null;
  if (config.federation !== null) {
    const round = config.federation.intervalMs;
    federation = await FederationHost.start({
      datacenter: config.consul.datacenter,
      nodeId: config.id,
      address: `${scheme}://${config.listen.host}:${config.listen.port}`,
      secret: config.federation.secret,
      join: config.federation.join,
      dataDir: config.data,
      logger,
      status: () => ({ ...node.status(), clusterId: node.clusterId }),
      tuning: { probeIntervalMs: round, syncIntervalMs: round, probeTimeoutMs: Math.floor(round / 2) },
      // Gossip, ?dc= forwarding, cross-datacenter watches and DNS all connect through it; the host closes it.
      ...(federationClient === null ? {} : { client: federationClient }),
    });
  }
  const app = buildApp({
    federation: { datacenter: config.consul.datacenter, host: federation },
    node,
    logger,
    tokens,
    acl: config.acl,
    authFailureLimit: config.authFailureLimit,
    testRoutes: config.testFaults,
    healthReports: () => node.healthReports(),
    alertWebhook:
      config.alertWebhook === null
        ? null
        : new WebhookPoster({
            url: config.alertWebhook,
            onResult: (r) =>
              r.ok
                ? logger.debug({ attempts: r.attempts }, 'alert posted to the webhook')
                : logger.warn({ attempts: r.attempts, status: r.status, err: r.error }, 'alert webhook failed'),
          }),
    watch: {
      maxBufferedBytes: config.watchBufferBytes,
      progressMinMs: config.watchProgressMs,
      progressMaxMs: config.watchProgressMs * 2,
    },
    listMaxItems: config.listMaxItems,
    overload: {
      maxLagMs: config.maxEventLoopLagMs,
      maxPendingWork: config.maxPendingWork,
      maxInflight: config.maxInflightRequests,
      retryAfterSeconds: 1,
    },
    maxRequestsPerConnection: config.maxRequestsPerConnection,
    ...(tls.api === null
      ? {}
      : {
          https: serverTlsOptions(tls.api),
          tlsRefusals,
          // A follower relaying to the leader's API: the certificates in force now.
          relayFetch: httpsRelayFetch(() => ({
            ca: [reloadable.peer?.material.ca, reloadable.api?.material.ca].filter((ca): ca is Buffer => ca != null),
            cert: reloadable.api!.material.cert,
            key: reloadable.api!.material.key,
          })),
        }),
  });
  if (config.maxConnections > 0) app.server.maxConnections = config.maxConnections;
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.listen.port;
  logger.info(
    {
      http: `${scheme}://${config.listen.host}:${port}`,
      peer: `${config.peerListen.host}:${config.peerListen.port}`,
      peerTls: tls.peer !== null,
    },
    'serving',
  );
  // The Consul-compatible API on its own listener (--consul-listen), before the ready line.
  try {
    const consulTokens = config.acl ? new AccessControl(tokens, { node, timeoutMs: 5000 }) : tokens;
    consul = await startConsulFromConfig(
      config.consul,
      node,
      logger,
      consulTokens,
      tls.consul,
      federation,
      config.authFailureLimit,
      config.maxConnections,
      tlsRefusals,
    );
  } catch (err) {
    // A port in use must stop the node, not leave it running without the API it was asked for.
    logger.error({ err }, 'cannot serve the Consul API (--consul-listen)');
    await shutdown(1);
  }
  // DNS (--dns-listen), likewise before the ready line, and likewise fatal when it cannot bind.
  try {
    const dnsAccess = config.acl || tokens !== null ? { secret: dnsToken, file: tokens, acl: config.acl } : null;
    dns = await startDnsFromConfig(
      config.dns,
      config.consul,
      node,
      logger,
      tls.dns,
      federation,
      dnsAccess,
      tlsRefusals,
    );
  } catch (err) {
    logger.error({ err }, 'cannot serve DNS (--dns-listen)');
    await shutdown(1);
  }
  // The probes on a port and thread of their own (--probe-listen), likewise.
  if (config.probeListen !== null) {
    try {
      probes = await ProbeListener.start({
        host: config.probeListen.host,
        port: config.probeListen.port,
        // https:// (config.ts made sure the API has TLS): the API's certificate, reloaded with it.
        tls: config.probeListen.https ? tls.api : null,
        tlsRefusals,
        nodeId: config.id,
        stallLimitMs: config.probeStallLimitMs,
        readiness: () => app.readiness(),
        logger,
      });
    } catch (err) {
      logger.error({ err }, 'cannot serve the probes (--probe-listen)');
      await shutdown(1);
    }
  }
  // SIGHUP: every certificate and key again, for new connections; established ones go on.
  reloadable.api?.onReload((m) => (app.server as unknown as HttpsServer).setSecureContext(secureContextOptions(m)));
  const probeListener = probes;
  if (probeListener !== null && config.probeListen?.https === true)
    reloadable.api?.onReload((m) => probeListener.setTls(m));
  const consulApi = consul;
  if (consulApi !== null) reloadable.consul?.onReload((m) => consulApi.setSecureContext(secureContextOptions(m)));
  const dnsServer = dns;
  if (dnsServer !== null) reloadable.dns?.onReload((m) => dnsServer.setSecureContext(secureContextOptions(m)));
  reloadable.peer?.onReload((m) => node.transport.setTls(peerTlsOptions(m)));
  // The DNS token file too: the next question reads with the token it holds now.
  const dnsTokenReload =
    dnsServer?.access != null && config.dns.tokenFile != null && dnsToken !== null
      ? new DnsTokenReload(config.dns.tokenFile, dnsToken, { file: tokens, acl: config.acl }, dnsServer.access)
      : null;
  // The federation links: new requests get the new material, requests and watches under way keep theirs.
  const reloader = new TlsReloader(logger, [...Object.values(reloadable), federationClient, dnsTokenReload]);
  process.on('SIGHUP', () => void reloader.reload());
  // Before the ready line: a script that stops the node as soon as it reads it must not
  // find SIGTERM's default action (death, exit code null) still in place.
  process.on('SIGTERM', () => void shutdown(0));
  process.on('SIGINT', () => void shutdown(0));
  // Machine-readable line for scripts and tests that start nodes on port 0.
  if (process.env.ROLLCALL_READY_FD === '1')
    process.stdout.write(`${JSON.stringify({ ready: true, id: config.id, http: port })}\n`);

  async function shutdown(code: number): Promise<void> {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down');
    const force = setTimeout(() => process.exit(code || 1), 10_000);
    force.unref();
    try {
      await dns?.close();
      await consul?.close();
      await app.close();
      await federation?.close();
      // After the app: while it closes, the probe listener reports the node not ready.
      await probes?.close();
      await node.close();
      // Last: the listeners are closed, so its final counts are final.
      tlsRefusals.close();
      logger.info('stopped');
    } catch (err) {
      logger.error({ err }, 'error while shutting down');
      code = code || 1;
    }
    process.exit(code);
  }
}

/** The peer transport's TLS material (settings.ts makes sure the peer CA is there). */
function peerTlsOptions(m: TlsMaterial): { cert: Buffer; key: Buffer; ca: Buffer } {
  return { cert: m.cert, key: m.key, ca: m.ca! };
}
