/**
 * Node configuration from flags, environment variables (ROLLCALL_*) and an optional
 * JSON config file, in that order of precedence. Problems are reported as one clear
 * message naming the setting.
 */
import { readFileSync } from 'node:fs';
import { type ConsulSettings, DEFAULT_CONSUL_NAMESPACE, DEFAULT_DATACENTER, nameProblem } from '../consul/settings.js';
import {
  DEFAULT_DNS_DOMAIN,
  DEFAULT_DNS_TTL,
  type DnsSettings,
  domainProblem,
  normalizeDomain,
  ttlProblem,
} from '../dns/settings.js';
import { isDatacenterName } from '../federation/config.js';
import { readFederationTlsFiles, readTlsSettings, TLS_ENV, type TlsSettings } from '../security/settings.js';
import type { ClientTlsFiles } from '../security/tls-files.js';
import { isClusterToken } from '../storage/cluster-id.js';
import type { PeerAddress } from '../transport/index.js';
import { parseHostPort } from '../transport/index.js';
import { DEFAULT_STALL_LIMIT_MS } from './probes/state.js';

export interface ServerConfig {
  readonly id: string;
  readonly data: string;
  readonly listen: PeerAddress;
  readonly peerListen: PeerAddress;
  readonly peers: ReadonlyMap<string, PeerAddress>;
  readonly clusterSecret: string;
  readonly join: boolean;
  /** --initial-cluster-token: names the cluster this node founds (its id is derived from it); null: none. */
  readonly initialClusterToken: string | null;
  /** Rewrite the data directory into a one-member cluster before starting (src/ops/force-new-cluster.ts). */
  readonly forceNewCluster: boolean;
  /** The leader's corruption check runs this often (ms); 0: only on demand (src/ops/corruption-check.ts). */
  readonly corruptionCheckIntervalMs: number;
  readonly logLevel: string;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly compactEvery: number;
  readonly testFaults: boolean;
  /** Bearer-token file (JSON); null = auth off. */
  readonly tokenFile: string | null;
  /** --acl: replicated access tokens (docs/security.md, "Access control"). */
  readonly acl: boolean;
  /** --auth-failure-limit: failed authentications one source address may make per minute before 429; 0: no limit. */
  readonly authFailureLimit: number;
  /** The Consul-compatible API: --consul-listen (off by default), --datacenter, --consul-namespace. */
  readonly consul: ConsulSettings;
  /** The DNS interface: --dns-listen (off by default), --dns-domain, --dns-ttl; datacenter and namespace as `consul`. */
  readonly dns: DnsSettings;
  /** TLS files per listener: --tls-*, --consul-tls-*, --dns-tls-*, --peer-tls-* (src/security/settings.ts). */
  readonly tls: TlsSettings;
  /** A watcher with more unflushed bytes than this is cut with a resume point. */
  readonly watchBufferBytes: number;
  /** Idle watch streams get a progress event every N to 2N ms. */
  readonly watchProgressMs: number;
  /** The leader posts fired and resolved alerts here (JSON); null = no webhook. */
  readonly alertWebhook: string | null;
  /** The most items one listing answer (or page) may hold; larger listings must be paginated. */
  readonly listMaxItems: number;
  /** Shed new work (503 OVERLOADED) while the event loop lags more than this (ms); 0: never for lag. */
  readonly maxEventLoopLagMs: number;
  /** Shed new work while more than this many requests wait in the node; 0: never for this. */
  readonly maxPendingWork: number;
  /** Shed new work while this many HTTP requests are in flight (watch streams not counted); 0: never for this. */
  readonly maxInflightRequests: number;
  /** Most concurrent HTTP connections (more are refused at once); 0: no limit. */
  readonly maxConnections: number;
  /** Requests one keep-alive connection may make before the node closes it; 0: no limit. */
  readonly maxRequestsPerConnection: number;
  /** GET /healthz and /readyz on their own listener and thread (--probe-listen); null = off. */
  readonly probeListen: ProbeListen | null;
  /** The probe listener's /healthz fails once the main event loop has not run for this long (ms). */
  readonly probeStallLimitMs: number;
  /** Federation between datacenters (docs/federation.md); null = off (no --federation-secret). */
  readonly federation: FederationSettings | null;
}

export interface FederationSettings {
  /** --federation-secret: authenticates every message between datacenters. */
  readonly secret: string;
  /** --federation-join: any node of another datacenter, as http(s) URLs. */
  readonly join: readonly string[];
  /** --federation-interval-ms: the gossip round (probe and push-pull period); tests shorten it. */
  readonly intervalMs: number;
  /**
   * --federation-tls-ca, --federation-tls-cert, --federation-tls-key: the client side of
   * every connection to another datacenter (src/federation/http-client.ts); null: the
   * system's CAs, no client certificate.
   */
  readonly tls: ClientTlsFiles | null;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`);
  }
}

type Raw = Record<string, string | boolean | undefined>;

const ENV: Record<string, string> = {
  id: 'ROLLCALL_ID',
  data: 'ROLLCALL_DATA',
  listen: 'ROLLCALL_LISTEN',
  'peer-listen': 'ROLLCALL_PEER_LISTEN',
  peers: 'ROLLCALL_PEERS',
  'cluster-secret': 'ROLLCALL_CLUSTER_SECRET',
  join: 'ROLLCALL_JOIN',
  'initial-cluster-token': 'ROLLCALL_INITIAL_CLUSTER_TOKEN',
  'force-new-cluster': 'ROLLCALL_FORCE_NEW_CLUSTER',
  'corruption-check-interval': 'ROLLCALL_CORRUPTION_CHECK_INTERVAL',
  'log-level': 'ROLLCALL_LOG_LEVEL',
  'tick-ms': 'ROLLCALL_TICK_MS',
  'election-ticks': 'ROLLCALL_ELECTION_TICKS',
  'compact-every': 'ROLLCALL_COMPACT_EVERY',
  'token-file': 'ROLLCALL_TOKEN_FILE',
  acl: 'ROLLCALL_ACL',
  'auth-failure-limit': 'ROLLCALL_AUTH_FAILURE_LIMIT',
  'consul-listen': 'ROLLCALL_CONSUL_LISTEN',
  datacenter: 'ROLLCALL_DATACENTER',
  'consul-namespace': 'ROLLCALL_CONSUL_NAMESPACE',
  'dns-listen': 'ROLLCALL_DNS_LISTEN',
  'dns-domain': 'ROLLCALL_DNS_DOMAIN',
  'dns-ttl': 'ROLLCALL_DNS_TTL',
  'dns-token-file': 'ROLLCALL_DNS_TOKEN_FILE',
  'watch-buffer-bytes': 'ROLLCALL_WATCH_BUFFER_BYTES',
  'watch-progress-ms': 'ROLLCALL_WATCH_PROGRESS_MS',
  'alert-webhook': 'ROLLCALL_ALERT_WEBHOOK',
  'list-max-items': 'ROLLCALL_LIST_MAX_ITEMS',
  'max-event-loop-lag-ms': 'ROLLCALL_MAX_EVENT_LOOP_LAG_MS',
  'max-pending-work': 'ROLLCALL_MAX_PENDING_WORK',
  'max-inflight-requests': 'ROLLCALL_MAX_INFLIGHT_REQUESTS',
  'max-connections': 'ROLLCALL_MAX_CONNECTIONS',
  'max-requests-per-connection': 'ROLLCALL_MAX_REQUESTS_PER_CONNECTION',
  'probe-listen': 'ROLLCALL_PROBE_LISTEN',
  'probe-stall-limit-ms': 'ROLLCALL_PROBE_STALL_LIMIT_MS',
  'federation-secret': 'ROLLCALL_FEDERATION_SECRET',
  'federation-join': 'ROLLCALL_FEDERATION_JOIN',
  'federation-interval-ms': 'ROLLCALL_FEDERATION_INTERVAL_MS',
  ...TLS_ENV,
};

export function parseAddress(setting: string, value: string): PeerAddress {
  const address = parseHostPort(value);
  if (!address) throw new ConfigError(setting, `expected HOST:PORT, got ${JSON.stringify(value)}`);
  return address;
}

/** Where the probes are served, and whether over HTTPS. */
export interface ProbeListen extends PeerAddress {
  readonly https: boolean;
}

/**
 * --probe-listen `HOST:PORT` or `http://HOST:PORT` (plain HTTP), or `https://HOST:PORT`:
 * HTTPS with the HTTP API's --tls-cert, --tls-key and --tls-client-ca (reloaded with them
 * on SIGHUP), as etcd serves an https --listen-metrics-urls with its client TLS.
 */
export function probeListenSetting(value: string | boolean | undefined, tls: TlsSettings): ProbeListen | null {
  if (typeof value !== 'string' || value === '') return null;
  const scheme = /^(https?):\/\//i.exec(value);
  const https = scheme?.[1]?.toLowerCase() === 'https';
  const rest = scheme === null ? value : value.slice(scheme[0].length);
  const address = rest.includes('/') ? null : parseHostPort(rest);
  if (!address)
    throw new ConfigError(
      '--probe-listen',
      `expected HOST:PORT, http://HOST:PORT or https://HOST:PORT, got ${JSON.stringify(value)}`,
    );
  if (https && tls.api === null)
    throw new ConfigError(
      '--probe-listen',
      `${value} serves the probes over HTTPS with the HTTP API's certificate: give --tls-cert and --tls-key too (or use http://)`,
    );
  return { ...address, https };
}

export function parsePeers(value: string): Map<string, PeerAddress> {
  const peers = new Map<string, PeerAddress>();
  for (const part of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError('--peers', `expected ID=HOST:PORT, got ${JSON.stringify(part)}`);
    const id = part.slice(0, eq);
    if (peers.has(id)) throw new ConfigError('--peers', `${id} is listed twice`);
    peers.set(id, parseAddress('--peers', part.slice(eq + 1)));
  }
  return peers;
}

function intSetting(setting: string, v: string | boolean | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new ConfigError(`--${setting}`, `expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return n;
}

/** Merges flags over environment over config file and checks the result. */
export function resolveConfig(flags: Raw, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  let file: Raw = {};
  const configPath = flags.config ?? env.ROLLCALL_CONFIG;
  if (typeof configPath === 'string') {
    try {
      file = JSON.parse(readFileSync(configPath, 'utf8')) as Raw;
    } catch (err) {
      throw new ConfigError('--config', `cannot read ${configPath}: ${(err as Error).message}`);
    }
  }
  const get = (k: string): string | boolean | undefined => flags[k] ?? (ENV[k] ? env[ENV[k]!] : undefined) ?? file[k];
  const need = (k: string): string => {
    const v = get(k);
    if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`--${k}`, `is required (or set ${ENV[k]})`);
    return v;
  };
  const id = need('id');
  const peers = parsePeers(need('peers'));
  if (!peers.has(id)) throw new ConfigError('--peers', `must include this node (${id})`);
  const peerListen = get('peer-listen') ? parseAddress('--peer-listen', need('peer-listen')) : peers.get(id)!;
  const secret = need('cluster-secret');
  if (secret.length < 8) throw new ConfigError('--cluster-secret', 'must be at least 8 characters');
  const join = get('join');
  const forceNewCluster = get('force-new-cluster');
  const isSet = (v: string | boolean | undefined): boolean => v === true || v === 'true' || v === '1';
  if (isSet(join) && isSet(forceNewCluster))
    throw new ConfigError(
      '--force-new-cluster',
      'recovers a member from its own data; it cannot be combined with --join',
    );
  const tls = readTlsSettings(get, (setting, message) => {
    throw new ConfigError(setting, message);
  });
  return {
    id,
    data: need('data'),
    listen: parseAddress('--listen', need('listen')),
    peerListen,
    peers,
    clusterSecret: secret,
    join: isSet(join),
    initialClusterToken: initialClusterToken(get('initial-cluster-token')),
    forceNewCluster: isSet(forceNewCluster),
    corruptionCheckIntervalMs: 1000 * intSetting('corruption-check-interval', get('corruption-check-interval'), 300, 0),
    logLevel: (get('log-level') as string | undefined) ?? 'info',
    tickMs: intSetting('tick-ms', get('tick-ms'), 50, 1),
    electionTicks: intSetting('election-ticks', get('election-ticks'), 10, 3),
    compactEvery: intSetting('compact-every', get('compact-every'), 10_000, 10),
    testFaults: env.ROLLCALL_TEST_FAULTS === '1',
    tokenFile: typeof get('token-file') === 'string' && get('token-file') !== '' ? (get('token-file') as string) : null,
    acl: isSet(get('acl')),
    authFailureLimit: intSetting('auth-failure-limit', get('auth-failure-limit'), 30, 0),
    consul: consulSettings(get),
    dns: dnsSettings(get),
    tls,
    watchBufferBytes: intSetting('watch-buffer-bytes', get('watch-buffer-bytes'), 1024 * 1024, 4096),
    watchProgressMs: intSetting('watch-progress-ms', get('watch-progress-ms'), 5000, 10),
    alertWebhook: webhookSetting(get('alert-webhook')),
    listMaxItems: intSetting('list-max-items', get('list-max-items'), 10_000, 1),
    maxEventLoopLagMs: intSetting('max-event-loop-lag-ms', get('max-event-loop-lag-ms'), 200, 0),
    maxPendingWork: intSetting('max-pending-work', get('max-pending-work'), 10_000, 0),
    maxInflightRequests: intSetting('max-inflight-requests', get('max-inflight-requests'), 0, 0),
    maxConnections: intSetting('max-connections', get('max-connections'), 0, 0),
    maxRequestsPerConnection: intSetting('max-requests-per-connection', get('max-requests-per-connection'), 0, 0),
    probeListen: probeListenSetting(get('probe-listen'), tls),
    probeStallLimitMs: intSetting('probe-stall-limit-ms', get('probe-stall-limit-ms'), DEFAULT_STALL_LIMIT_MS, 100),
    federation: federationSettings(get),
  };
}

/** --federation-secret (federation is off without it), --federation-join, --federation-interval-ms, --federation-tls-*. */
function federationSettings(get: (k: string) => string | boolean | undefined): FederationSettings | null {
  const secret = get('federation-secret');
  const join = get('federation-join');
  const intervalMs = intSetting('federation-interval-ms', get('federation-interval-ms'), 1000, 20);
  const tls = readFederationTlsFiles(get, (setting, message) => {
    throw new ConfigError(setting, message);
  });
  if (secret === undefined || secret === '') {
    if (typeof join === 'string' && join !== '')
      throw new ConfigError('--federation-join', 'needs --federation-secret');
    if (tls !== null)
      throw new ConfigError(
        tls.ca !== null ? '--federation-tls-ca' : '--federation-tls-cert',
        'needs --federation-secret',
      );
    return null;
  }
  if (typeof secret !== 'string' || secret.length < 8)
    throw new ConfigError('--federation-secret', 'must be at least 8 characters');
  const urls =
    typeof join === 'string'
      ? join
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  for (const u of urls)
    if (!/^https?:\/\/[^\s/]+/.test(u) || u.length > 512)
      throw new ConfigError('--federation-join', `expected http(s) URLs, got ${JSON.stringify(u)}`);
  return { secret, join: urls.map((u) => u.replace(/\/+$/, '')), intervalMs, tls };
}

/**
 * --initial-cluster-token: the same for every founding member of one cluster and for no
 * other founding (etcd's flag, with restore's rules: src/storage/cluster-id.ts). Only a
 * founding reads it, so a config file shared with members that --join may carry it.
 */
function initialClusterToken(v: string | boolean | undefined): string | null {
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string' || !isClusterToken(v))
    throw new ConfigError(
      '--initial-cluster-token',
      `must be 1-256 printable characters without spaces, not ${JSON.stringify(v)}`,
    );
  return v;
}

function webhookSetting(v: string | boolean | undefined): string | null {
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string' || !/^https?:\/\/[^\s]+$/.test(v))
    throw new ConfigError('--alert-webhook', `expected an http(s) URL, got ${JSON.stringify(v)}`);
  return v;
}

/** --consul-listen, --datacenter, --consul-namespace (src/consul/settings.ts). */
function consulSettings(get: (k: string) => string | boolean | undefined): ConsulSettings {
  const listen = get('consul-listen');
  const name = (k: string, dflt: string): string => {
    const v = get(k);
    if (v === undefined || v === '') return dflt;
    const problem = typeof v === 'string' ? nameProblem(v) : 'must be a name';
    if (problem !== null) throw new ConfigError(`--${k}`, problem);
    return v as string;
  };
  return {
    listen: typeof listen === 'string' && listen !== '' ? parseAddress('--consul-listen', listen) : null,
    datacenter: datacenterName(get('datacenter')),
    namespace: name('consul-namespace', DEFAULT_CONSUL_NAMESPACE),
  };
}

/** --datacenter: letters, digits and '-', at most 63 (a DNS label; federation gossips it). */
function datacenterName(v: string | boolean | undefined): string {
  if (v === undefined || v === '') return DEFAULT_DATACENTER;
  if (!isDatacenterName(v))
    throw new ConfigError('--datacenter', `letters, digits and '-', at most 63; got ${JSON.stringify(v)}`);
  return v;
}

/** --dns-listen, --dns-domain, --dns-ttl, --dns-token-file (src/dns/settings.ts). */
function dnsSettings(get: (k: string) => string | boolean | undefined): DnsSettings {
  const listen = get('dns-listen');
  const domain = get('dns-domain');
  if (domain !== undefined && domain !== '') {
    const problem = typeof domain === 'string' ? domainProblem(domain) : 'must be a domain name';
    if (problem !== null) throw new ConfigError('--dns-domain', problem);
  }
  const rawTtl = get('dns-ttl');
  const ttl = rawTtl === undefined || rawTtl === '' ? DEFAULT_DNS_TTL : Number(rawTtl);
  const ttlIssue = typeof rawTtl === 'boolean' ? 'must be a number of seconds' : ttlProblem(ttl);
  if (ttlIssue !== null) throw new ConfigError('--dns-ttl', ttlIssue);
  return {
    listen: typeof listen === 'string' && listen !== '' ? parseAddress('--dns-listen', listen) : null,
    domain: typeof domain === 'string' && domain !== '' ? normalizeDomain(domain) : DEFAULT_DNS_DOMAIN,
    ttl,
    tokenFile:
      typeof get('dns-token-file') === 'string' && get('dns-token-file') !== ''
        ? (get('dns-token-file') as string)
        : null,
  };
}
