/**
 * Which instances a service name resolves to, read from the node's own registry (no read
 * barrier, no leader needed: DNS answers are local, like Consul's default `allow_stale`).
 *
 * - Health as the Consul API maps it (src/consul/shapes.ts, instanceStatus): critical
 *   (Rollcall `down`, or a failing TTL check) is left out; passing and warning stay, and a
 *   `suspect` instance (expiry held back by protection) counts as passing, so a network
 *   fault does not empty DNS either. Disabled instances are left out.
 * - Names match case-insensitively, as DNS names do: service and namespace first exactly
 *   (the cheap, common case), then against a case-folded index of the registry's services,
 *   built once and then moved only by a service that appears or goes (below), so a stream
 *   of NXDOMAIN questions under steady writes costs a map lookup each.
 * - Tags match case-insensitively too (Consul's DNS does the same).
 * - SRV weight: the instance's weight, or its Consul `Weights.Warning` while it warns.
 *
 * No question walks a service (issue 22: no request may hold the event loop). The usable
 * endpoints of a service are kept per service, with an index per lower-cased tag, built on
 * the first question about that service (one walk of its instances) and from then on
 * patched from the registry's change feed (its history notices, which run inside the
 * apply, so the cache is never behind the registry it reads): one event costs O(its tags).
 * A question then draws its sample in O(limit). A snapshot install (a reset notice) drops
 * every cache; each is built again on its next question. The one walk is the only cost
 * proportional to a service's size, paid once per service, not per question, and it is
 * sliced: the first question reads DEFAULT_BUILD_SLICE instances, and the rest are read a
 * slice per turn of the event loop. Until then a question about that service is answered
 * from the instances read so far (a correct, smaller random subset, as after truncation),
 * or with SERVFAIL (resolvers retry) when none of those qualifies yet, never with a false
 * NXDOMAIN. A service no larger than a slice is complete on its first question.
 */
import { instanceStatus, readRecord } from '../consul/index.js';
import type { Instance, RegistryEvent } from '../registry/index.js';
import type { NodeApi } from '../server/node-api.js';
import type { DnsAccess } from './access.js';

export type RegistryView = Pick<
  NodeApi['registry'],
  'eachInstance' | 'listServices' | 'revision' | 'serviceSize' | 'history'
>;

/**
 * The most endpoints one answer is built from, by the question's type: about as many
 * records as the largest message (65,535 bytes, over TCP) carries for a short name, so a
 * service with more is answered from a uniform random sample of this size (work bounded
 * per question however large the service; a client sees a random subset either way, as it
 * would after the shuffle and the trim). dns-packet writes every name in full (no
 * compression), so a record is its owner name, 10 bytes (type, class, TTL, data length) and
 * its data. For `web.service.consul` (20 bytes on the wire):
 *
 *   A     20 + 10 + 4                                           = 34 bytes → 65,535 / 34 ≈ 1,927
 *   AAAA  20 + 10 + 16                                          = 46 bytes → ≈ 1,424
 *   SRV   20 + 10 + 6 + 26 (target `0a000001.addr.dc1.consul`)  = 62 bytes → ≈ 1,057
 *
 * rounded down to 1,900, 1,400 and 1,000 (an SRV answer that large goes without its
 * additional records: truncate.ts). Longer names fit fewer; the encoder trims those.
 */
export const MAX_DNS_ENDPOINTS = { A: 1900, AAAA: 1400, SRV: 1000 } as const;

/**
 * Instances read into a service's cache per turn of the event loop while it is built: a
 * few milliseconds of work (reading one takes a few microseconds: its Consul check record
 * is JSON), so a 100,000-instance service is read in 50 turns, never in one.
 */
export const DEFAULT_BUILD_SLICE = 2000;

/** The sample size for a question of `type` (ANY and other types: as for A, the largest). */
export function endpointLimit(type: string): number {
  return type === 'SRV' ? MAX_DNS_ENDPOINTS.SRV : type === 'AAAA' ? MAX_DNS_ENDPOINTS.AAAA : MAX_DNS_ENDPOINTS.A;
}

/** One instance as DNS shows it. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** SRV weight, 0..65535. */
  readonly weight: number;
}

/** A usable instance in a service's cache: its endpoint and its tags, lower-cased, each once. */
interface CachedEndpoint {
  readonly endpoint: Endpoint;
  readonly tags: readonly string[];
}

/** A set of endpoints that takes adds and removes in O(1) and gives a uniform sample in O(limit). */
class EndpointSet {
  private readonly items: Endpoint[] = [];
  private readonly keys: string[] = [];
  private readonly at = new Map<string, number>();

  get size(): number {
    return this.items.length;
  }

  add(key: string, e: Endpoint): void {
    const k = this.at.get(key);
    if (k !== undefined) {
      this.items[k] = e;
      return;
    }
    this.at.set(key, this.items.length);
    this.items.push(e);
    this.keys.push(key);
  }

  delete(key: string): void {
    const k = this.at.get(key);
    if (k === undefined) return;
    // Swap the last one into the hole: order carries no meaning here.
    const last = this.items.length - 1;
    this.items[k] = this.items[last]!;
    this.keys[k] = this.keys[last]!;
    this.at.set(this.keys[k]!, k);
    this.items.pop();
    this.keys.pop();
    this.at.delete(key);
  }

  /** All of them, or `limit` distinct ones drawn uniformly (a partial Fisher-Yates over a sparse map: O(limit)). */
  sample(random: () => number, limit: number): Endpoint[] {
    const n = this.items.length;
    if (n <= limit) return this.items.slice();
    const moved = new Map<number, number>();
    const out: Endpoint[] = [];
    for (let k = 0; k < limit; k++) {
      const j = k + Math.floor(random() * (n - k));
      const atJ = moved.get(j) ?? j;
      moved.set(j, moved.get(k) ?? k);
      out.push(this.items[atJ]!);
    }
    return out;
  }
}

/**
 * One service's usable endpoints: all of them, and per lower-cased tag. Built by reading the
 * service's instances through a live iterator, a slice at a time, while every applied change
 * is patched in as it comes. That is exact at every step: the registry's maps yield, when
 * read, every entry present from the start and not removed, each as it is at that moment,
 * and anything that changed meanwhile was put in (or taken out) by its change already;
 * reading an instance twice is harmless (put replaces).
 */
class ServiceCache {
  readonly all = new EndpointSet();
  readonly byTag = new Map<string, EndpointSet>();
  private readonly cached = new Map<string, CachedEndpoint>();
  /** The rest of the first read; null once every instance has been read. */
  private walker: Iterator<Instance> | null;

  constructor(instances: Iterator<Instance>) {
    this.walker = instances;
  }

  get complete(): boolean {
    return this.walker === null;
  }

  /** Reads up to `count` more instances; true when the whole service has been read. */
  advance(count: number): boolean {
    const w = this.walker;
    if (w === null) return true;
    for (let k = 0; k < count; k++) {
      const r = w.next();
      if (r.done === true) {
        this.walker = null;
        return true;
      }
      this.put(r.value);
    }
    return false;
  }

  /** Takes the instance as it is now: in if usable, out otherwise. */
  put(i: Instance): void {
    this.remove(i);
    if (!i.enabled) return;
    const status = instanceStatus(i);
    if (status === 'critical') return;
    const key = memberKey(i);
    const c: CachedEndpoint = {
      endpoint: { address: i.address, port: i.port, weight: srvWeight(i, status === 'warning') },
      tags: lowerTags(i.tags),
    };
    this.cached.set(key, c);
    this.all.add(key, c.endpoint);
    for (const t of c.tags) {
      let set = this.byTag.get(t);
      if (set === undefined) {
        set = new EndpointSet();
        this.byTag.set(t, set);
      }
      set.add(key, c.endpoint);
    }
  }

  remove(i: Instance): void {
    const key = memberKey(i);
    const c = this.cached.get(key);
    if (c === undefined) return;
    this.cached.delete(key);
    this.all.delete(key);
    for (const t of c.tags) {
      const set = this.byTag.get(t);
      if (set === undefined) continue;
      set.delete(key);
      if (set.size === 0) this.byTag.delete(t);
    }
  }
}

function lowerTags(tags: readonly string[]): readonly string[] {
  if (tags.length === 0) return tags;
  if (tags.length === 1) return [tags[0]!.toLowerCase()];
  return [...new Set(tags.map((t) => t.toLowerCase()))];
}

/** An instance's id is unique within its service (the registry keys instances by namespace, service, id). */
function memberKey(i: Instance): string {
  return i.id;
}

function serviceKeyOf(namespace: string, service: string): string {
  return `${namespace}\u0000${service}`;
}

export class ServiceDirectory {
  /**
   * Every service by its case-folded name, for a question whose exact name has no instance:
   * built from listServices() on the first such question, then kept in step with the change
   * feed (a service that appears or goes is one map operation); null until then and after a reset.
   */
  private folded: FoldedIndex | null = null;
  /** namespace \0 service -> its usable endpoints, for services asked about since the last reset. */
  private readonly caches = new Map<string, ServiceCache>();
  /** Caches still being read, a slice per turn of the event loop (the oldest first). */
  private readonly building = new Set<ServiceCache>();
  private buildTurn: NodeJS.Immediate | null = null;
  private readonly unsubscribe: () => void;

  /**
   * @param buildSlice how many instances one turn of the event loop reads into a cache
   *   being built (the first question reads one slice itself): a bound on how long building
   *   a large service's cache holds the loop at a time.
   * @param access what the DNS token may read (access.ts); null: access control off, every service answers.
   */
  constructor(
    private readonly registry: RegistryView,
    private readonly buildSlice = DEFAULT_BUILD_SLICE,
    private readonly access: Pick<DnsAccess, 'usable' | 'mayRead'> | null = null,
  ) {
    this.unsubscribe = registry.history.subscribe((notice) => {
      if (notice.kind === 'reset') {
        this.caches.clear();
        this.building.clear();
        this.folded = null;
        return;
      }
      for (const e of notice.events) this.patch(e);
      this.follow(notice.events);
    });
  }

  /** Stops following the registry's changes (the DNS server's close). */
  close(): void {
    this.unsubscribe();
    if (this.buildTurn !== null) clearImmediate(this.buildTurn);
    this.buildTurn = null;
    this.caches.clear();
    this.building.clear();
    this.folded = null;
  }

  /** How many services' caches are still being read (0 when every answer comes from a complete one). */
  get pendingBuilds(): number {
    return this.building.size;
  }

  /**
   * The endpoints `service` (with `tag`, if any) resolves to in `namespace`, in no particular
   * order: all of them, or a uniform sample of `limit` when more qualify. While a large
   * service's cache is still being read: a sample of those read so far, or 'pending' when
   * none of them qualifies yet (the answer is not known: not a name that does not exist).
   * With access control on (access.ts): 'pending' too while the DNS token is not valid here,
   * for every name (known or not, so the answer tells nothing), and none for a service the
   * token may not read, as for one that does not exist.
   */
  endpoints(
    namespace: string,
    service: string,
    tag: string | null,
    random: () => number,
    limit: number = MAX_DNS_ENDPOINTS.A,
  ): Endpoint[] | 'pending' {
    const access = this.access;
    if (access === null) {
      let cache = this.cacheOf(namespace, service);
      if (cache === null) {
        const folded = this.fold(namespace, service);
        if (folded === undefined) return [];
        cache = this.cacheOf(folded.namespace, folded.service);
        if (cache === null) return [];
      }
      return this.sampleOf(cache, tag, random, limit);
    }
    if (!access.usable()) return 'pending';
    // Resolved to the names as registered before the scope is checked (a token limited to
    // `prod` reads `PROD.ns` as `prod`), and no cache is built for a service it may not read.
    let target: { namespace: string; service: string } | undefined = { namespace, service };
    if (!this.caches.has(serviceKeyOf(namespace, service)) && this.registry.serviceSize(namespace, service) === 0)
      target = this.fold(namespace, service);
    if (target === undefined || !access.mayRead(target.namespace, target.service)) return [];
    const cache = this.cacheOf(target.namespace, target.service);
    return cache === null ? [] : this.sampleOf(cache, tag, random, limit);
  }

  private sampleOf(
    cache: ServiceCache,
    tag: string | null,
    random: () => number,
    limit: number,
  ): Endpoint[] | 'pending' {
    const set = tag === null ? cache.all : cache.byTag.get(tag.toLowerCase());
    if (set === undefined || set.size === 0) return cache.complete ? [] : 'pending';
    return set.sample(random, limit);
  }

  /** The cache of a service with at least one instance under this exact name (built now if need be); null: none. */
  private cacheOf(namespace: string, service: string): ServiceCache | null {
    const key = serviceKeyOf(namespace, service);
    const known = this.caches.get(key);
    if (known !== undefined) return known;
    const size = this.registry.serviceSize(namespace, service);
    if (size === 0) return null;
    const cache = new ServiceCache(this.registry.eachInstance(namespace, service));
    this.caches.set(key, cache);
    // A service that fits in a slice is read whole now (one more step sees the end).
    if (!cache.advance(size <= this.buildSlice ? size + 1 : this.buildSlice)) {
      this.building.add(cache);
      this.scheduleBuild();
    }
    return cache;
  }

  /** One slice of the oldest cache being built per turn, until none is left. */
  private scheduleBuild(): void {
    if (this.buildTurn !== null || this.building.size === 0) return;
    this.buildTurn = setImmediate(() => {
      this.buildTurn = null;
      const [cache] = this.building;
      if (cache?.advance(this.buildSlice)) this.building.delete(cache);
      this.scheduleBuild();
    });
  }

  /** One applied change, into the cache of its service if there is one (in the apply: O(the instance's tags)). */
  private patch(e: RegistryEvent): void {
    const { namespace, service } = e.instance;
    const key = serviceKeyOf(namespace, service);
    const cache = this.caches.get(key);
    if (cache === undefined) return;
    if (e.type === 'put') cache.put(e.instance);
    else cache.remove(e.instance);
    // A service that lost its last instance is forgotten, so caches never outnumber live services.
    if (e.type === 'delete' && this.registry.serviceSize(namespace, service) === 0) {
      this.caches.delete(key);
      this.building.delete(cache);
    }
  }

  /** Keeps the folded index in step with the set of services: only a service that appeared or went moves it. */
  private follow(events: readonly RegistryEvent[]): void {
    if (this.folded === null) return;
    const touched = new Map<string, { namespace: string; service: string }>();
    for (const e of events) touched.set(serviceKeyOf(e.instance.namespace, e.instance.service), e.instance);
    // Whether each touched service exists is read once, after the whole batch: the state the next question sees.
    for (const { namespace, service } of touched.values()) {
      if (this.registry.serviceSize(namespace, service) > 0) addFolded(this.folded, namespace, service);
      else removeFolded(this.folded, namespace, service);
    }
  }

  private fold(namespace: string, service: string): { namespace: string; service: string } | undefined {
    if (this.folded === null) {
      const folded: FoldedIndex = new Map();
      for (const s of this.registry.listServices()) addFolded(folded, s.namespace, s.service);
      this.folded = folded;
    }
    const alike = this.folded.get(foldedKey(namespace, service));
    if (alike === undefined) return undefined;
    // Of two names that fold alike, the first by namespace then service wins, always the same one.
    let first: { namespace: string; service: string } | undefined;
    for (const n of alike.values())
      if (
        first === undefined ||
        cmp(n.namespace, first.namespace) < 0 ||
        (n.namespace === first.namespace && cmp(n.service, first.service) < 0)
      )
        first = n;
    return first;
  }
}

/** lower(namespace) \0 lower(service) -> the services (namespace \0 service -> names as registered) that fold to it. */
type FoldedIndex = Map<string, Map<string, { namespace: string; service: string }>>;

function foldedKey(namespace: string, service: string): string {
  return `${namespace.toLowerCase()}\u0000${service.toLowerCase()}`;
}

function addFolded(index: FoldedIndex, namespace: string, service: string): void {
  const key = foldedKey(namespace, service);
  let alike = index.get(key);
  if (alike === undefined) {
    alike = new Map();
    index.set(key, alike);
  }
  alike.set(serviceKeyOf(namespace, service), { namespace, service });
}

function removeFolded(index: FoldedIndex, namespace: string, service: string): void {
  const key = foldedKey(namespace, service);
  const alike = index.get(key);
  if (alike === undefined) return;
  alike.delete(serviceKeyOf(namespace, service));
  if (alike.size === 0) index.delete(key);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function srvWeight(i: Instance, warning: boolean): number {
  const w = warning ? (readRecord(i).warningWeight ?? i.weight) : i.weight;
  return Math.max(0, Math.min(65535, w));
}

/** Fisher-Yates in place with the given source of [0, 1) numbers; returns `items`. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let k = items.length - 1; k > 0; k--) {
    const j = Math.floor(random() * (k + 1));
    const t = items[k]!;
    items[k] = items[j]!;
    items[j] = t;
  }
  return items;
}
