/**
 * Another datacenter's services over DNS (issue 18): `<service>.service.<dc>.dc.<domain>`
 * naming a datacenter other than this node's is answered by asking one of that datacenter's
 * live members over HTTP, as Consul forwards such a question to a server of the other
 * datacenter. This node keeps no copy of another datacenter's registry (every adapter reads
 * the node's API; nothing is replicated between datacenters):
 *
 * - Which member: the federation's route (`FederationHost.route`): live members first, the
 *   leader first among them, unreachable ones never. The request is the native listing,
 *   `GET /v1/namespaces/{ns}/services/{svc}/instances?dc=<dc>&consistency=serializable&limit=N`
 *   (serializable: any member answers from its own state without a leader, as DNS does
 *   here), signed as a federation hop (`x-rollcall-federation-hop`), so the member checks
 *   it came from the federation and refuses it if it is not in `<dc>` after all (a stale
 *   route). Members are tried in turn within one deadline (`timeoutMs`, 2 s by default:
 *   well inside a stub resolver's 5 s), each attempt at most half of it.
 * - Outcomes: a datacenter the federation does not know (or federation off) is NXDOMAIN,
 *   as Consul answers for an unknown datacenter; known but no member answered in time (or
 *   every member unreachable to the failure detector) is SERVFAIL, so resolvers retry; a
 *   service with no usable instance there is NXDOMAIN, like a local one.
 * - Cache: a DNS flood must not become an HTTP flood. Each (datacenter, namespace, service)
 *   answer is kept `cacheTtlMs` (5 s by default) and a failure `failureTtlMs` (1 s); one
 *   request at a time per name (every question that arrives meanwhile waits for it); at
 *   most `maxEntries` names (the least recently used goes). So a name costs at most one
 *   HTTP request per 5 s however many questions ask it, and a remote change shows up over
 *   DNS within 5 s plus the record TTL. A flood of distinct names is bounded too: at most
 *   `maxInflight` (64) lookups at once; a question that would start one more is SERVFAIL at
 *   once (not cached), so the other datacenter never sees more than 64 requests in flight
 *   from one node. The cache holds the whole usable list of the service
 *   (up to `maxInstances`); tags, the record type and the sample are applied per question.
 * - Every socket is this directory's own (keep-alive agents destroyed by `close()`).
 *
 * Limits: a remote service larger than `maxInstances` (2,000) is answered from its first
 * page (sorted by cluster, then id), not a uniform sample; the service name is matched as
 * written there (the local case folding needs that datacenter's index); with token auth on
 * in the other datacenter, the listing is refused (DNS carries no token) and answers SERVFAIL.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readRecord, statusOfHealth } from '../consul/index.js';
import { errorCodeOf } from '../consul/remote.js';
import { worseStatus } from '../consul/shapes.js';
import { HOP_HEADER } from '../federation/host.js';
import type { Logger } from '../log/index.js';
import { RepeatLimiter } from '../log/repeat-limiter.js';
import type { Health } from '../registry/index.js';
import type { Endpoint } from './lookup.js';

/** What DNS needs of the federation: the node's FederationHost has all three. */
export interface DatacenterRoutes {
  /** The members of `datacenter` to try, in order; null: no such datacenter known. */
  route(datacenter: string): { readonly members: readonly { readonly address: string }[] } | null;
  /** Every known datacenter's name (to match a DNS label case-insensitively). */
  datacentersByRtt(): string[];
  /** Signs a forwarded request (`x-rollcall-federation-hop`). */
  hopHeader(method: string, url: string): string;
}

/** One usable instance of a remote service: its endpoint and its tags, lower-cased. */
export interface RemoteEndpoint {
  readonly endpoint: Endpoint;
  readonly tags: readonly string[];
}

export type RemoteAnswer =
  | { readonly kind: 'unknown-datacenter' }
  | { readonly kind: 'unreachable' }
  /** `datacenter`: the name as the federation spells it. */
  | { readonly kind: 'endpoints'; readonly datacenter: string; readonly endpoints: readonly RemoteEndpoint[] };

export interface RemoteDirectoryOptions {
  readonly routes: DatacenterRoutes;
  readonly logger: Logger;
  /** How long an answer is reused (default 5000 ms). */
  readonly cacheTtlMs?: number;
  /** How long "unreachable" is reused (default 1000 ms). */
  readonly failureTtlMs?: number;
  /** The deadline for one remote lookup, every member tried included (default 2000 ms). */
  readonly timeoutMs?: number;
  /** Names kept at most (default 1024). */
  readonly maxEntries?: number;
  /** Instances read of one remote service at most (default 2000: the largest DNS answer's sample). */
  readonly maxInstances?: number;
  /** Remote lookups in flight at most (default 64); beyond, SERVFAIL at once. */
  readonly maxInflight?: number;
  /** Monotonic ms (default performance.now); tests pass their own. */
  readonly now?: () => number;
}

export const DEFAULT_REMOTE_CACHE_TTL_MS = 5_000;
export const DEFAULT_REMOTE_FAILURE_TTL_MS = 1_000;
export const DEFAULT_REMOTE_TIMEOUT_MS = 2_000;

type Settled = Exclude<RemoteAnswer, { kind: 'unknown-datacenter' }>;
type Entry = { readonly until: number; readonly answer: Settled } | { readonly pending: Promise<Settled> };

const UNKNOWN: RemoteAnswer = Object.freeze({ kind: 'unknown-datacenter' });
const UNREACHABLE: Settled = Object.freeze({ kind: 'unreachable' });
const HEALTHS: ReadonlySet<string> = new Set<Health>(['healthy', 'subhealthy', 'down', 'suspect']);

/** Why one member did not answer usefully: try the next (`next`), or stop (`stop`: the answer would be the same). */
class MemberFailure extends Error {
  constructor(
    message: string,
    readonly then: 'next' | 'stop',
  ) {
    super(message);
  }
}

export class RemoteDirectory {
  private readonly entries = new Map<string, Entry>();
  private readonly agents = {
    http: new HttpAgent({ keepAlive: true, maxSockets: 16 }),
    https: new HttpsAgent({ keepAlive: true, maxSockets: 16 }),
  };
  private readonly failures: RepeatLimiter<{ datacenter: string; failures: string[] }>;
  private readonly now: () => number;
  private readonly cacheTtlMs: number;
  private readonly failureTtlMs: number;
  private readonly timeoutMs: number;
  private readonly maxEntries: number;
  private readonly maxInstances: number;
  private readonly maxInflight: number;
  private inflight = 0;
  private closed = false;

  constructor(private readonly options: RemoteDirectoryOptions) {
    this.now = options.now ?? (() => performance.now());
    this.cacheTtlMs = options.cacheTtlMs ?? DEFAULT_REMOTE_CACHE_TTL_MS;
    this.failureTtlMs = options.failureTtlMs ?? DEFAULT_REMOTE_FAILURE_TTL_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS;
    this.maxEntries = options.maxEntries ?? 1024;
    this.maxInstances = options.maxInstances ?? 2000;
    this.maxInflight = options.maxInflight ?? 64;
    const log = options.logger;
    this.failures = new RepeatLimiter({
      onSummary: (s) => log.warn({ ...s.context, count: s.count }, 'DNS: more remote lookups failed'),
    });
  }

  /**
   * The usable endpoints of `service` in another datacenter: from the cache when it is fresh
   * (synchronously), else once the remote lookup (shared by every question for that name) ends.
   */
  lookup(datacenter: string, namespace: string, service: string): RemoteAnswer | Promise<RemoteAnswer> {
    const dc = this.canonical(datacenter);
    if (dc === null) return UNKNOWN;
    const key = `${dc}\u0000${namespace}\u0000${service}`;
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      if ('pending' in entry) return entry.pending;
      if (entry.until > this.now()) {
        // Least recently used goes first: a hit moves the name to the end.
        this.entries.delete(key);
        this.entries.set(key, entry);
        return entry.answer;
      }
    }
    const route = this.options.routes.route(dc);
    if (route === null) return UNKNOWN;
    // Every member unreachable to the failure detector: no network at all (and nothing to cache).
    if (route.members.length === 0) return UNREACHABLE;
    // A flood of distinct names: shed here rather than pass it on to the other datacenter.
    if (this.inflight >= this.maxInflight) return UNREACHABLE;
    this.inflight++;
    const pending = this.fetch(
      dc,
      namespace,
      service,
      route.members.map((m) => m.address),
    ).then((answer) => {
      this.inflight--;
      if (!this.closed && this.entries.get(key) === stored) {
        this.entries.delete(key);
        const ttl = answer.kind === 'unreachable' ? this.failureTtlMs : this.cacheTtlMs;
        this.entries.set(key, { until: this.now() + ttl, answer });
      }
      return answer;
    });
    const stored: Entry = { pending };
    this.entries.delete(key);
    this.entries.set(key, stored);
    this.evict();
    return pending;
  }

  /** Ends every remote request (their questions answer SERVFAIL) and forgets the cache. */
  close(): void {
    this.closed = true;
    this.agents.http.destroy();
    this.agents.https.destroy();
    this.failures.close();
    this.entries.clear();
  }

  /** The federation's spelling of a datacenter named in a DNS label (labels match in any case); null: unknown. */
  private canonical(datacenter: string): string | null {
    const routes = this.options.routes;
    if (routes.route(datacenter) !== null) return datacenter;
    const lower = datacenter.toLowerCase();
    return routes.datacentersByRtt().find((n) => n.toLowerCase() === lower) ?? null;
  }

  private evict(): void {
    for (const key of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) return;
      const e = this.entries.get(key)!;
      // A lookup in flight stays: the questions waiting on it are answered from its promise anyway.
      if (!('pending' in e)) this.entries.delete(key);
    }
  }

  private async fetch(dc: string, namespace: string, service: string, addresses: readonly string[]): Promise<Settled> {
    const path =
      `/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(service)}/instances` +
      `?dc=${encodeURIComponent(dc)}&consistency=serializable&limit=${this.maxInstances}`;
    const deadline = this.now() + this.timeoutMs;
    const failures: string[] = [];
    for (const address of addresses) {
      const left = deadline - this.now();
      if (left <= 0 || this.closed) break;
      try {
        const endpoints = await this.ask(address, path, Math.min(left, Math.max(this.timeoutMs / 2, 250)));
        return { kind: 'endpoints', datacenter: dc, endpoints };
      } catch (err) {
        failures.push(`${address}: ${(err as Error).message}`);
        if (err instanceof MemberFailure && err.then === 'stop') break;
      }
    }
    if (!this.closed && this.failures.admit(dc, { datacenter: dc, failures }))
      this.options.logger.warn(
        { datacenter: dc, namespace, service, failures },
        'DNS: no member of the datacenter answered; SERVFAIL',
      );
    return UNREACHABLE;
  }

  /** One listing from one member: the usable endpoints, or a MemberFailure. */
  private ask(address: string, path: string, timeoutMs: number): Promise<RemoteEndpoint[]> {
    let url: URL;
    try {
      url = new URL(`${address.replace(/\/+$/, '')}${path}`);
    } catch {
      return Promise.reject(new MemberFailure('not a URL', 'next'));
    }
    const https = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(
        url,
        {
          method: 'GET',
          agent: https ? this.agents.https : this.agents.http,
          headers: { accept: 'application/json', [HOP_HEADER]: this.options.routes.hopHeader('GET', path) },
        },
        (res) => {
          readBody(res).then((text) => {
            clearTimeout(timer);
            try {
              resolve(this.endpointsOf(res.statusCode ?? 0, text));
            } catch (err) {
              reject(err);
            }
          }, fail);
        },
      );
      const fail = (err: Error) => {
        clearTimeout(timer);
        req.destroy();
        reject(err instanceof MemberFailure ? err : new MemberFailure(err.message, 'next'));
      };
      const timer = setTimeout(
        () => fail(new MemberFailure(`no answer within ${Math.round(timeoutMs)} ms`, 'next')),
        timeoutMs,
      );
      req.once('error', fail);
      req.end();
    });
  }

  private endpointsOf(status: number, text: string): RemoteEndpoint[] {
    // A name that cannot exist there (400 INVALID_ARGUMENT: not a valid service name) or a service it does not
    // have: no instance. Any other 400 (UNKNOWN_DATACENTER: a member with federation off) says nothing of the
    // service: ask the next member rather than cache an NXDOMAIN.
    if (status === 400) {
      if (errorCodeOf(text) === 'INVALID_ARGUMENT') return [];
      throw new MemberFailure(`HTTP 400 ${errorCodeOf(text) ?? ''}`.trimEnd(), 'next');
    }
    if (status === 404) return [];
    if (status === 401 || status === 403)
      throw new MemberFailure(`HTTP ${status}: the listing needs a token there`, 'stop');
    if (status !== 200) throw new MemberFailure(`HTTP ${status}`, 'next');
    let body: { instances?: unknown };
    try {
      body = JSON.parse(text) as { instances?: unknown };
    } catch {
      throw new MemberFailure('the answer is not JSON', 'next');
    }
    if (!Array.isArray(body.instances)) throw new MemberFailure('the answer has no instances list', 'next');
    const out: RemoteEndpoint[] = [];
    for (const raw of body.instances) {
      const e = usableRemote(raw);
      if (e !== null) out.push(e);
    }
    return out;
  }
}

/**
 * An instance of the native API's wire shape as DNS offers it, or null: left out when it is
 * disabled or critical (Rollcall `down`, or a failing TTL check), with the SRV weight of a
 * warning instance from its Consul `Weights.Warning` — the same rules as local answers
 * (lookup.ts, through src/consul's mapping).
 */
export function usableRemote(raw: unknown): RemoteEndpoint | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const i = raw as Record<string, unknown>;
  const { address, port, weight, tags, metadata, health, enabled } = i;
  if (enabled !== true || typeof address !== 'string' || address === '') return null;
  if (typeof port !== 'number' || typeof weight !== 'number' || typeof health !== 'string' || !HEALTHS.has(health))
    return null;
  const meta = typeof metadata === 'object' && metadata !== null ? (metadata as Readonly<Record<string, string>>) : {};
  const record = readRecord({ metadata: meta });
  const fromHealth = statusOfHealth(health as Health);
  const status = record.check === null ? fromHealth : worseStatus(fromHealth, record.check.status);
  if (status === 'critical') return null;
  const w = status === 'warning' ? (record.warningWeight ?? weight) : weight;
  const tagList = Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [];
  return {
    endpoint: { address, port, weight: Math.max(0, Math.min(65535, w)) },
    tags: [...new Set(tagList.map((t) => t.toLowerCase()))],
  };
}

/** The whole body, at most 64 MiB (a page of 2,000 instances is far less). */
function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 64 * 1024 * 1024) res.destroy(new Error('the answer is too large'));
      else chunks.push(c);
    });
    res.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.once('error', reject);
  });
}
