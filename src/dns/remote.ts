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
 * - Names match as the local ones do (lookup.ts), case-insensitively (RFC 4343): the service
 *   and namespace as written first (the common case, one request); when that datacenter has
 *   no instance under them, its service names (`GET /v1/services`, serializable, read once
 *   per `cacheTtlMs` per datacenter and shared by every name) are folded, and the first
 *   service by namespace then name that folds alike is asked for. Tags fold too (below).
 * - Connections: the federation's (FederationHttpClient, `--federation-tls-*`: the CAs
 *   another datacenter's certificate must chain to, the client certificate this node
 *   presents), lent by the FederationHost (`routes.client`) or, absent, a pool of this
 *   directory's own, closed by `close()`.
 *
 * Limits: a remote service larger than `maxInstances` (2,000) is answered from its first
 * page (sorted by cluster, then id), not a uniform sample; a folded name is found among the
 * first `maxFoldedServices` (100,000) services of that datacenter; with token auth on in the
 * other datacenter, the listing is refused (DNS carries no token) and answers SERVFAIL.
 */
import type { IncomingMessage } from 'node:http';
import { readRecord, statusOfHealth } from '../consul/index.js';
import { errorCodeOf } from '../consul/remote.js';
import { worseStatus } from '../consul/shapes.js';
import { HOP_HEADER } from '../federation/host.js';
import { FederationHttpClient } from '../federation/http-client.js';
import type { Logger } from '../log/index.js';
import { RepeatLimiter } from '../log/repeat-limiter.js';
import type { Health } from '../registry/index.js';
import type { DnsAccess } from './access.js';
import type { Endpoint } from './lookup.js';

/** What DNS needs of the federation: the node's FederationHost has all three. */
export interface DatacenterRoutes {
  /** The members of `datacenter` to try, in order; null: no such datacenter known. */
  route(datacenter: string): { readonly members: readonly { readonly address: string }[] } | null;
  /** Every known datacenter's name (to match a DNS label case-insensitively). */
  datacentersByRtt(): string[];
  /** Signs a forwarded request (`x-rollcall-federation-hop`). */
  hopHeader(method: string, url: string): string;
  /** The connections to other datacenters (--federation-tls-*), owned by whoever lends them. */
  readonly client?: FederationHttpClient;
}

/** One usable instance of a remote service: its endpoint and its tags, lower-cased. */
export interface RemoteEndpoint {
  readonly endpoint: Endpoint;
  readonly tags: readonly string[];
}

export type RemoteAnswer =
  | { readonly kind: 'unknown-datacenter' }
  | { readonly kind: 'unreachable' }
  /**
   * `datacenter`: the name as the federation spells it; `namespace` and `service`: the names
   * the question matched there, as registered (folded: see the file comment), or as asked when
   * nothing matched. The DNS token's scope is checked against these (`scopedLookup`).
   */
  | {
      readonly kind: 'endpoints';
      readonly datacenter: string;
      readonly namespace: string;
      readonly service: string;
      readonly endpoints: readonly RemoteEndpoint[];
    };

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
  /** Services of a datacenter read at most to fold a name's case (default 100,000). */
  readonly maxFoldedServices?: number;
  /** Monotonic ms (default performance.now); tests pass their own. */
  readonly now?: () => number;
}

export const DEFAULT_REMOTE_CACHE_TTL_MS = 5_000;
export const DEFAULT_REMOTE_FAILURE_TTL_MS = 1_000;
export const DEFAULT_REMOTE_TIMEOUT_MS = 2_000;

type Settled = Exclude<RemoteAnswer, { kind: 'unknown-datacenter' }>;
/** A datacenter's services by case-folded name: lower(ns) \0 lower(svc) -> the first such service, as registered. */
type FoldedNames = ReadonlyMap<string, { readonly namespace: string; readonly service: string }>;
type FoldedEntry = { readonly until: number; readonly names: FoldedNames } | { readonly pending: Promise<FoldedNames> };
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
  /** The datacenter's folded service names, per datacenter (`cacheTtlMs`, like the answers). */
  private readonly folded = new Map<string, FoldedEntry>();
  private readonly client: FederationHttpClient;
  /** Whether `client` is this directory's own, to close with it. */
  private readonly ownClient: boolean;
  private readonly failures: RepeatLimiter<{ datacenter: string; failures: string[] }>;
  private readonly now: () => number;
  private readonly cacheTtlMs: number;
  private readonly failureTtlMs: number;
  private readonly timeoutMs: number;
  private readonly maxEntries: number;
  private readonly maxInstances: number;
  private readonly maxInflight: number;
  private readonly maxFoldedServices: number;
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
    this.maxFoldedServices = options.maxFoldedServices ?? 100_000;
    this.ownClient = options.routes.client === undefined;
    this.client = options.routes.client ?? new FederationHttpClient();
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
    if (this.ownClient) this.client.close();
    this.failures.close();
    this.entries.clear();
    this.folded.clear();
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
    const deadline = this.now() + this.timeoutMs;
    const failures: string[] = [];
    for (const address of addresses) {
      if (deadline - this.now() <= 0 || this.closed) break;
      try {
        const found = await this.listing(address, dc, namespace, service, deadline);
        return { kind: 'endpoints', datacenter: dc, ...found };
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

  /**
   * The usable endpoints of the service from one member: under the name as written, or, when
   * that datacenter has no instance under it, under the name that folds alike (lookup.ts).
   */
  private async listing(
    address: string,
    dc: string,
    namespace: string,
    service: string,
    deadline: number,
  ): Promise<{ namespace: string; service: string; endpoints: RemoteEndpoint[] }> {
    const exact = await this.instances(address, dc, namespace, service, deadline);
    if (exact !== null) return { namespace, service, endpoints: exact };
    const key = foldedKey(namespace, service);
    const names = await this.foldedNames(address, dc, deadline);
    const alike = names.get(key);
    if (alike === undefined || (alike.namespace === namespace && alike.service === service))
      return { namespace, service, endpoints: [] };
    const endpoints = (await this.instances(address, dc, alike.namespace, alike.service, deadline)) ?? [];
    return { ...alike, endpoints };
  }

  /** One service's usable endpoints from one member; null: it has no instance under this exact name. */
  private async instances(
    address: string,
    dc: string,
    namespace: string,
    service: string,
    deadline: number,
  ): Promise<RemoteEndpoint[] | null> {
    const path =
      `/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(service)}/instances` +
      `?dc=${encodeURIComponent(dc)}&consistency=serializable&limit=${this.maxInstances}`;
    const { status, text } = await this.ask(address, path, this.attemptMs(deadline));
    return this.endpointsOf(status, text);
  }

  /** Each attempt at most half the deadline (at least 250 ms), so a hanging member leaves time for the next. */
  private attemptMs(deadline: number): number {
    const left = deadline - this.now();
    if (left <= 0) throw new MemberFailure('the deadline passed', 'stop');
    return Math.min(left, Math.max(this.timeoutMs / 2, 250));
  }

  /** The datacenter's services by folded name: from the cache, or read from `address` (one read at a time per datacenter). */
  private foldedNames(address: string, dc: string, deadline: number): Promise<FoldedNames> {
    const entry = this.folded.get(dc);
    if (entry !== undefined) {
      if ('pending' in entry) return entry.pending;
      if (entry.until > this.now()) return Promise.resolve(entry.names);
    }
    const pending = this.readServices(address, dc, deadline).then(
      (names) => {
        if (!this.closed && this.folded.get(dc) === stored)
          this.folded.set(dc, { until: this.now() + this.cacheTtlMs, names });
        return names;
      },
      (err: unknown) => {
        if (this.folded.get(dc) === stored) this.folded.delete(dc);
        throw err;
      },
    );
    const stored: FoldedEntry = { pending };
    this.folded.set(dc, stored);
    return pending;
  }

  /** Every service of the datacenter (`GET /v1/services`, serializable, page by page), folded. */
  private async readServices(address: string, dc: string, deadline: number): Promise<FoldedNames> {
    const names = new Map<string, { namespace: string; service: string }>();
    let token: string | null = null;
    let read = 0;
    do {
      const path: string =
        `/v1/services?dc=${encodeURIComponent(dc)}&consistency=serializable&limit=10000` +
        (token === null ? '' : `&continue=${encodeURIComponent(token)}`);
      const { status, text } = await this.ask(address, path, this.attemptMs(deadline));
      if (status === 401 || status === 403)
        throw new MemberFailure(`HTTP ${status}: the service list needs a token there`, 'stop');
      if (status !== 200) throw new MemberFailure(`HTTP ${status} ${errorCodeOf(text) ?? ''}`.trimEnd(), 'next');
      let body: { services?: unknown; continue?: unknown };
      try {
        body = JSON.parse(text) as { services?: unknown; continue?: unknown };
      } catch {
        throw new MemberFailure('the service list is not JSON', 'next');
      }
      if (!Array.isArray(body.services)) throw new MemberFailure('the answer has no services list', 'next');
      for (const raw of body.services) {
        const { namespace, service } = (raw ?? {}) as { namespace?: unknown; service?: unknown };
        if (typeof namespace !== 'string' || typeof service !== 'string') continue;
        const key = foldedKey(namespace, service);
        const first = names.get(key);
        // Of two names that fold alike, the first by namespace then service wins (as lookup.ts picks).
        if (
          first === undefined ||
          namespace < first.namespace ||
          (namespace === first.namespace && service < first.service)
        )
          names.set(key, { namespace, service });
      }
      read += body.services.length;
      token = typeof body.continue === 'string' && body.continue !== '' ? body.continue : null;
    } while (token !== null && read < this.maxFoldedServices);
    return names;
  }

  /** One GET to one member, signed as a federation hop: its status and body, or a MemberFailure. */
  private ask(address: string, path: string, timeoutMs: number): Promise<{ status: number; text: string }> {
    let url: URL;
    try {
      url = new URL(`${address.replace(/\/+$/, '')}${path}`);
    } catch {
      return Promise.reject(new MemberFailure('not a URL', 'next'));
    }
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        clearTimeout(timer);
        req?.destroy();
        const code = (err as NodeJS.ErrnoException).code;
        const message = code === undefined || err.message.includes(code) ? err.message : `${code}: ${err.message}`;
        reject(err instanceof MemberFailure ? err : new MemberFailure(message, 'next'));
      };
      const timer = setTimeout(
        () => fail(new MemberFailure(`no answer within ${Math.round(timeoutMs)} ms`, 'next')),
        timeoutMs,
      );
      let req: ReturnType<FederationHttpClient['request']> | undefined;
      try {
        req = this.client.request(
          'dns',
          url,
          {
            method: 'GET',
            headers: { accept: 'application/json', [HOP_HEADER]: this.options.routes.hopHeader('GET', path) },
          },
          (res) => {
            readBody(res).then((text) => {
              clearTimeout(timer);
              resolve({ status: res.statusCode ?? 0, text });
            }, fail);
          },
        );
      } catch (err) {
        fail(err as Error);
        return;
      }
      req.once('error', fail);
      req.end();
    });
  }

  /**
   * The usable endpoints of a listing answer; null: no instance under that name there (404,
   * or an empty list), so the name is worth folding.
   */
  private endpointsOf(status: number, text: string): RemoteEndpoint[] | null {
    // A name that cannot exist there (400 INVALID_ARGUMENT: not a valid service name) or a service it does not
    // have: no instance. Any other 400 (UNKNOWN_DATACENTER: a member with federation off) says nothing of the
    // service: ask the next member rather than cache an NXDOMAIN.
    if (status === 400) {
      // Not a valid name there in any case: nothing to fold either.
      if (errorCodeOf(text) === 'INVALID_ARGUMENT') return [];
      throw new MemberFailure(`HTTP 400 ${errorCodeOf(text) ?? ''}`.trimEnd(), 'next');
    }
    if (status === 404) return null;
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
    if (body.instances.length === 0) return null;
    const out: RemoteEndpoint[] = [];
    for (const raw of body.instances) {
      const e = usableRemote(raw);
      if (e !== null) out.push(e);
    }
    return out;
  }
}

/**
 * `remote`'s lookups read under the DNS token (access.ts), as local names are (lookup.ts): the
 * scope is checked against the names the question matched there, as registered, not as asked,
 * since a name matches in any case and a token's namespaces and service prefixes do not (a
 * token for `pay` reads `PAY.service.dc-b.dc` only if dc-b registered it as `pay...`). An
 * answer out of scope is no instance (NXDOMAIN, as for a name that does not exist); a DNS token
 * not valid here is SERVFAIL for every name.
 *
 * Where the question alone decides it (no name that folds like the one asked is in scope: a
 * namespace the token is not limited to, or a service no prefix starts in any case), the
 * answer is the same NXDOMAIN without asking the other datacenter at all: a name DNS may not
 * show costs it no request, and says nothing about whether that datacenter is reachable. The
 * check after the answer stays for the names that may fold into the scope or out of it there.
 */
export function scopedLookup(
  remote: Pick<RemoteDirectory, 'lookup'>,
  access: Pick<DnsAccess, 'usable' | 'readsAny' | 'mayRead' | 'mayReadSomeCase'>,
): Pick<RemoteDirectory, 'lookup'> {
  const scoped = (answer: RemoteAnswer): RemoteAnswer => {
    // Revoked while that datacenter was asked: SERVFAIL, as every question from now on.
    if (!access.usable()) return UNREACHABLE;
    if (answer.kind !== 'endpoints' || answer.endpoints.length === 0) return answer;
    return access.mayRead(answer.namespace, answer.service) ? answer : { ...answer, endpoints: [] };
  };
  return {
    lookup: (dc, namespace, service) => {
      if (!access.usable()) return UNREACHABLE;
      // A token that reads nothing (or none), or nothing this name may fold to: no instance,
      // and nothing asked of that datacenter.
      if (!access.readsAny() || !access.mayReadSomeCase(namespace, service))
        return { kind: 'endpoints', datacenter: dc, namespace, service, endpoints: [] };
      const answer = remote.lookup(dc, namespace, service);
      return answer instanceof Promise ? answer.then(scoped) : scoped(answer);
    },
  };
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

function foldedKey(namespace: string, service: string): string {
  return `${namespace.toLowerCase()}\u0000${service.toLowerCase()}`;
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
