/**
 * The Consul-compatible HTTP API (issue 17): existing Consul tools (the npm `consul`
 * client, Prometheus's Consul discovery, consul-template, Traefik) pointed at a Rollcall
 * node work unchanged, with Rollcall's guarantees underneath. See docs/consul.md.
 *
 * @example
 * ```ts
 * const consul = await startConsulApi({ node, logger, listen: { host: '127.0.0.1', port: 8501 } });
 * // ... later
 * await consul.close();
 * ```
 */
import type { Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from '../log/index.js';
import type { HandshakeRefusals } from '../security/handshake-refusals.js';
import { serverTlsOptions, type TlsMaterial } from '../security/tls-files.js';
import type { AccessControl } from '../server/acl.js';
import type { TokenAuthority } from '../server/auth.js';
import type { NodeApi } from '../server/node-api.js';
import type { PeerAddress } from '../transport/index.js';
import { buildConsulApp, type ConsulAppOptions } from './app.js';
import type { ConsulFederation } from './remote.js';

export { buildConsulApp, type ConsulApp, type ConsulAppOptions } from './app.js';
export { readRecord } from './check-record.js';
export { formatGoDuration, parseGoDuration } from './duration.js';
export type { ConsulFederation } from './remote.js';
export { type ConsulSettings, DEFAULT_CONSUL_NAMESPACE, DEFAULT_DATACENTER, nameProblem } from './settings.js';
export { instanceStatus, statusOfHealth } from './shapes.js';

export interface ConsulApi {
  /** The port it listens on (the one given, or the one picked for port 0). */
  readonly port: number;
  /** Stops listening, wakes parked blocking queries and closes their connections. */
  close(): Promise<void>;
  /** With HTTPS: new connections use this certificate and key (a SIGHUP reload); established ones keep theirs. */
  setSecureContext(options: SecureContextOptions): void;
}

export async function startConsulApi(
  options: ConsulAppOptions & {
    readonly listen: PeerAddress;
    /** `--max-connections`, as on the native listener: connections past it are closed (0: no limit). */
    readonly maxConnections?: number;
    /** With `https`: where refused handshakes are logged and counted. */
    readonly tlsRefusals?: HandshakeRefusals;
  },
): Promise<ConsulApi> {
  const { app } = buildConsulApp(options);
  // Parked blocking queries each hold a socket: without this the listener's only bound is the fd limit.
  if (options.maxConnections !== undefined && options.maxConnections > 0) {
    app.server.maxConnections = options.maxConnections;
  }
  if (options.https !== undefined) options.tlsRefusals?.watch(app.server as unknown as HttpsServer, 'consul');
  try {
    await app.listen({ host: options.listen.host, port: options.listen.port });
  } catch (err) {
    await app.close();
    throw err;
  }
  const a = app.server.address();
  const port = typeof a === 'object' && a !== null ? a.port : options.listen.port;
  options.logger.info(
    { consul: `${options.https ? 'https' : 'http'}://${options.listen.host}:${port}` },
    'serving the Consul-compatible API',
  );
  return {
    port,
    close: () => app.close(),
    setSecureContext: (context) => {
      if (!options.https) throw new Error('the Consul API serves plain HTTP; there is no certificate to replace');
      (app.server as unknown as HttpsServer).setSecureContext(context);
    },
  };
}

/** What runServer hands over: the node, its logger and tokens, and the settings from flags. */
export async function startConsulFromConfig(
  settings: { readonly listen: PeerAddress | null; readonly datacenter: string; readonly namespace: string },
  node: NodeApi,
  logger: Logger,
  tokens: TokenAuthority | AccessControl | null,
  tls: TlsMaterial | null = null,
  federation: ConsulFederation | null = null,
  authFailureLimit?: number,
  maxConnections = 0,
  tlsRefusals?: HandshakeRefusals,
): Promise<ConsulApi | null> {
  if (settings.listen === null) return null;
  return startConsulApi({
    node,
    logger,
    tokens,
    listen: settings.listen,
    datacenter: settings.datacenter,
    namespace: settings.namespace,
    federation,
    maxConnections,
    ...(authFailureLimit === undefined ? {} : { authFailureLimit }),
    ...(tls === null ? {} : { https: serverTlsOptions(tls) }),
    ...(tlsRefusals === undefined ? {} : { tlsRefusals }),
  });
}
