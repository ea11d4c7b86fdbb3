/**
 * The DNS interface (issue 17): `dig @node -p 8601 web.service.consul SRV` and every resolver
 * that speaks DNS find Rollcall instances as they would find Consul services. It answers
 * over UDP and TCP on one port from the node's own registry (any node, no leader needed),
 * reading it through the node's API like every other adapter, and keeps nothing of its own.
 * With federation on, a name in another datacenter (`web.service.dc2.dc.consul`) is asked
 * of a live member there over HTTP, with a short-lived cache (remote.ts).
 * Names, records and what differs from Consul: docs/consul.md, "DNS".
 *
 * @example
 * ```ts
 * const dns = await startDnsServer({ node, logger, listen: { host: '127.0.0.1', port: 8601 } });
 * // dig @127.0.0.1 -p 8601 orders.service.consul SRV
 * await dns.close();
 * ```
 */

import type { SecureContextOptions, TlsOptions } from 'node:tls';
import { DEFAULT_CONSUL_NAMESPACE, DEFAULT_DATACENTER } from '../consul/index.js';
import type { Logger } from '../log/index.js';
import type { HandshakeRefusals } from '../security/handshake-refusals.js';
import { serverTlsOptions, type TlsMaterial } from '../security/tls-files.js';
import type { NodeApi } from '../server/node-api.js';
import type { PeerAddress } from '../transport/index.js';
import { DnsAccess, type DnsAccessOptions } from './access.js';
import type { AnswerContext } from './answer.js';
import { ServiceDirectory } from './lookup.js';
import { type DatacenterRoutes, RemoteDirectory, type RemoteDirectoryOptions, scopedLookup } from './remote.js';
import { DEFAULT_DNS_DOMAIN, DEFAULT_DNS_TTL, type DnsSettings, normalizeDomain } from './settings.js';
import { DEFAULT_TCP_LIMITS, type TcpLimits, TcpListener } from './tcp.js';
import { UdpListener } from './udp.js';

export { DnsAccess, type DnsAccessOptions, dnsTokenProblem } from './access.js';
export { type AnswerContext, answerQuestion, type Reply } from './answer.js';
export { ServiceDirectory, shuffle } from './lookup.js';
export { respond } from './message.js';
export { type DnsName, parseName } from './names.js';
export { addressHex } from './records.js';
export {
  type DatacenterRoutes,
  DEFAULT_REMOTE_CACHE_TTL_MS,
  DEFAULT_REMOTE_FAILURE_TTL_MS,
  DEFAULT_REMOTE_TIMEOUT_MS,
  type RemoteAnswer,
  RemoteDirectory,
  type RemoteDirectoryOptions,
} from './remote.js';
export {
  DEFAULT_DNS_DOMAIN,
  DEFAULT_DNS_TTL,
  type DnsSettings,
  DnsTokenFileError,
  domainProblem,
  MAX_DNS_TTL,
  normalizeDomain,
  readDnsToken,
  readDnsTokenSync,
  ttlProblem,
} from './settings.js';
export { DnsTokenReload } from './token-reload.js';

/** What DNS reads of the node. */
export type DnsNode = Pick<NodeApi, 'registry' | 'integrity'>;

export interface DnsServerOptions {
  /** What DNS reads of the node: its registry, in memory, and its corruption mark. */
  readonly node: DnsNode;
  readonly logger: Logger;
  readonly listen: PeerAddress;
  readonly domain?: string;
  readonly ttl?: number;
  readonly datacenter?: string;
  /** The Rollcall namespace a name without `.ns` looks in (default `default`). */
  readonly namespace?: string;
  /** The shuffle's source of [0, 1) numbers (default Math.random); tests pass a seeded one. */
  readonly random?: () => number;
  readonly tcp?: Partial<TcpLimits>;
  /** DNS over TLS on the TCP side (certificate, key, client CA: src/security); UDP stays plain. Absent: plain TCP. */
  readonly tls?: TlsOptions;
  /** With `tls`: where refused handshakes are logged and counted. */
  readonly tlsRefusals?: HandshakeRefusals;
  /** The federation (the node's FederationHost): names in other datacenters are asked of them. Absent: NXDOMAIN. */
  readonly federation?: DatacenterRoutes | null;
  /** Tuning of those remote lookups (cache TTLs, deadline); defaults in remote.ts. */
  readonly remote?: Omit<RemoteDirectoryOptions, 'routes' | 'logger'>;
  /**
   * Access control (--acl or --token-file on the node): DNS answers only what the DNS token
   * (--dns-token-file) may read, and no service name without one (access.ts). Absent or
   * null: access control is off, every service answers.
   */
  readonly access?: DnsAccessOptions | null;
}

export interface DnsServer {
  /** The port both listeners use (the one given, or the one picked for port 0). */
  readonly port: number;
  /** Closes the UDP socket, the TCP listener and every TCP connection. */
  close(): Promise<void>;
  /** With TLS: new TCP connections use this certificate and key (a SIGHUP reload). */
  setSecureContext(options: SecureContextOptions): void;
  /** What DNS reads with under access control (its token is set again by a SIGHUP reload); null: access control off. */
  readonly access: DnsAccess | null;
}

export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const log = options.logger.child({ part: 'dns' });
  const { registry, integrity } = options.node;
  const access =
    options.access === undefined || options.access === null
      ? null
      : new DnsAccess(options.access, options.access.acl ? registry : null, log);
  if (options.access != null && options.access.secret === null)
    log.warn(
      { flag: '--dns-token-file' },
      'access control is on and DNS has no token: every service name answers NXDOMAIN; give --dns-token-file a token with role read (docs/consul.md, DNS "Access")',
    );
  // What DNS reads with, said once now: a token not known here yet is a warning at start, not at the first question.
  access?.announce();
  const directory = new ServiceDirectory(registry, undefined, access);
  const remote =
    options.federation === undefined || options.federation === null
      ? null
      : new RemoteDirectory({ ...options.remote, routes: options.federation, logger: log });
  // Another datacenter's names are checked against the DNS token here, by the names they
  // matched there (that datacenter checks the listing against its own tokens; DNS sends none).
  const scopedRemote: AnswerContext['remote'] | null =
    remote === null || access === null ? remote : scopedLookup(remote, access);
  const closeDirectories = (): void => {
    directory.close();
    remote?.close();
  };
  const ctx: AnswerContext = {
    directory,
    registry,
    domain: normalizeDomain(options.domain ?? DEFAULT_DNS_DOMAIN),
    datacenter: options.datacenter ?? DEFAULT_DATACENTER,
    namespace: options.namespace ?? DEFAULT_CONSUL_NAMESPACE,
    ttl: options.ttl ?? DEFAULT_DNS_TTL,
    random: options.random ?? Math.random,
    ...(scopedRemote === null ? {} : { remote: scopedRemote }),
    markedCorrupt: () => integrity.selfCorruption !== null,
  };
  const limits: TcpLimits = { ...DEFAULT_TCP_LIMITS, ...options.tcp };
  const { host } = options.listen;
  // UDP and TCP share one port. For port 0, TCP picks it and UDP follows; another process
  // may hold that UDP port already, so pick again a few times.
  for (let attempt = 1; ; attempt++) {
    let tcp: TcpListener;
    try {
      tcp = await TcpListener.listen(host, options.listen.port, ctx, log, limits, options.tls, options.tlsRefusals);
    } catch (err) {
      closeDirectories();
      throw err;
    }
    try {
      const udp = await UdpListener.listen(host, tcp.port, ctx, log);
      log.info(
        {
          dns: `${host}:${tcp.port}`,
          domain: ctx.domain,
          datacenter: ctx.datacenter,
          namespace: ctx.namespace,
          tls: options.tls !== undefined,
        },
        options.tls === undefined ? 'serving DNS (UDP and TCP)' : 'serving DNS (UDP, and TCP over TLS)',
      );
      return {
        port: tcp.port,
        access,
        setSecureContext: (context) => tcp.setSecureContext(context),
        close: async () => {
          await Promise.all([udp.close(), tcp.close()]);
          closeDirectories();
        },
      };
    } catch (err) {
      await tcp.close();
      if (options.listen.port !== 0 || attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
        closeDirectories();
        throw err;
      }
    }
  }
}

/**
 * What runServer hands over: the DNS flags, the Consul API's datacenter and namespace, the
 * node, its federation host (null: federation off, names in other datacenters are NXDOMAIN),
 * and the access control DNS reads under (null: off; the secret read from --dns-token-file).
 */
export async function startDnsFromConfig(
  settings: DnsSettings,
  scope: { readonly datacenter: string; readonly namespace: string },
  node: DnsNode,
  logger: Logger,
  tls: TlsMaterial | null = null,
  federation: DatacenterRoutes | null = null,
  access: DnsAccessOptions | null = null,
  tlsRefusals?: HandshakeRefusals,
): Promise<DnsServer | null> {
  if (settings.listen === null) return null;
  return startDnsServer({
    node,
    logger,
    listen: settings.listen,
    domain: settings.domain,
    ttl: settings.ttl,
    datacenter: scope.datacenter,
    namespace: scope.namespace,
    federation,
    access,
    ...(tls === null ? {} : { tls: serverTlsOptions(tls) }),
    ...(tlsRefusals === undefined ? {} : { tlsRefusals }),
  });
}
