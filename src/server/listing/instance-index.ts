/**
 * The registry's instances in listing order, for listings that are read in pages and in
 * slices: an ordered map from sort key (namespace, service, cluster, id) to the current
 * instance, and per service its counts and the revisions it changed at.
 *
 * The registry keeps instances in hash maps and sorts a whole service on every list, which
 * is what made one listing of 200,000 instances hold the event loop for over a second. This
 * index is kept current from the registry's history (every applied change, in revision
 * order), so a page is a seek plus `limit` steps, whatever the registry's size.
 *
 * One index per registry, shared by every app over it (acquire/release count the users).
 * It also tells the open RevisionViews about every change, so each can answer as of its
 * own revision while the registry moves on.
 *
 * Invariant (between event-loop turns): `services` holds exactly the services with at least
 * one instance, with counts that sum their instances; once built, `instances` holds exactly
 * the registry's instances, each under sortKey(itself). While it is being built, the partial
 * map holds exactly the current instances of every service up to the read position (the
 * service being read: those read so far or changed since its read began).
 *
 * Memory: the built map holds one [key, instance] pair per instance. A build holds the same
 * partial map and one live iterator over the service being read, nothing else: changes to
 * services not read yet are not kept (the read finds them), so a build's memory does not
 * grow with the write rate or with how long it takes.
 */
import type { HistoryNotice, Instance, Registry, RegistryEvent } from '../../registry/index.js';
import { type Counts, countInstance, emptyCounts, total } from './counts.js';
import { SortedMap } from './sorted-map.js';

/** What the index needs of a registry. */
export type IndexedRegistry = Pick<
  Registry,
  'history' | 'revision' | 'listServices' | 'listInstances' | 'eachInstance' | 'getInstance'
>;

/** Keys join names with NUL: no name contains it and it sorts below every allowed character, so key order is (namespace, service, cluster, id) order. */
export function sortKey(namespace: string, service: string, cluster: string, id: string): string {
  return `${namespace}\0${service}\0${cluster}\0${id}`;
}

export function instanceSortKey(i: Instance): string {
  return sortKey(i.namespace, i.service, i.cluster, i.id);
}

export function serviceSortKey(namespace: string, service: string): string {
  return `${namespace}\0${service}`;
}

/**
 * Where a scan of the keys that start with `prefix` begins (exclusive): after `prefix`
 * itself, or after a token's position. A position before the prefix (a token a client
 * altered) is not honoured: a scan never leaves its range, whatever the token says.
 */
export function rangeStart(prefix: string, after: string | undefined): string | null {
  const start = prefix === '' ? null : prefix;
  if (after === undefined) return start;
  return start === null || after > start ? after : start;
}

/** The exclusive upper bound of every key that starts with `prefix`. */
export function rangeEnd(prefix: string): string {
  return `${prefix}\uffff`;
}

export interface ServiceStats {
  readonly namespace: string;
  readonly service: string;
  /** The revision of its last change. */
  revision: number;
  readonly all: Counts;
  readonly clusters: Map<string, Counts>;
}

/** Told about every change (and about a replaced state) after the index has taken it in. */
export interface IndexObserver {
  observe(events: readonly RegistryEvent[]): void;
  /** A snapshot replaced the registry: what the observer holds no longer connects to it. */
  invalidate(): void;
}

const indexes = new WeakMap<IndexedRegistry, InstanceIndex>();

/** Trim the per-service revision logs after this many changes. */
const SWEEP_EVERY = 4096;

/** How long after the index is (re)built its sorted instances start being built in the background: out of a start's way. */
const SORT_DELAY_MS = 2000;
/** CPU a slice of that build may take before it yields the event loop. */
const SORT_SLICE_MS = 5;
/**
 * Instances read between two looks at the clock; a service with more is read through a live
 * iterator across slices rather than sorted whole in one turn (a 200,000-instance service
 * was ~160 ms).
 */
const SORT_CHUNK = 2048;

/** What a test (or a caller) may change of the background build; the first acquire sets it. */
export interface IndexOptions {
  readonly sortDelayMs?: number;
  readonly sortSliceMs?: number;
  readonly sortChunk?: number;
  /** Where the build's completion is logged (debug). */
  readonly log?: { debug(obj: object, msg: string): void };
}

/**
 * The sorted instances being built a slice at a time, services in key order, each read as
 * it is when its turn comes. A change to a service at or before the read position is applied
 * to the partial map at once; a change to one after it is not kept: reading it finds it.
 */
interface SortBuild {
  readonly map: SortedMap<Instance>;
  /** The key of the service read last (or being read); null before the first. */
  readTo: string | null;
  /**
   * The service being read across slices (a large one): its instances, live (a Map iterator:
   * it sees every instance there when it reaches it, added ones too). One that empties has
   * lost each instance to a change applied here, and its map (which the registry drops)
   * stays empty, so the iterator ends; a recreated one comes in through its changes.
   */
  reading: Iterator<Instance> | null;
  readonly began: number;
  slices: number;
  /** Changes applied to the partial map (for the log). */
  changes: number;
}

export class InstanceIndex {
  /**
   * Not built with the rest (null until it is): at a million instances its sort keys and
   * sorted map were ~1.3 s of CPU and ~100 MB of a node's start, and only listings of
   * instances need it (counts, services and alerts do not). It is built in the background
   * in slices of SORT_SLICE_MS from SORT_DELAY_MS after the rest, or at once by a listing
   * that comes first; once built it is kept current like everything else.
   */
  #instances: SortedMap<Instance> | null = null;
  #sortBuild: SortBuild | null = null;
  #sortTimer: ReturnType<typeof setTimeout> | null = null;
  #sortSlice: ReturnType<typeof setImmediate> | null = null;
  readonly #sortWaiters = new Set<(built: boolean) => void>();
  #options: IndexOptions = {};
  services = new SortedMap<ServiceStats>();
  /** Per namespace, and for everything. */
  readonly #namespaces = new Map<string, { counts: Counts; services: number }>();
  #all = emptyCounts();
  /**
   * Per service key, the revisions it changed at, ascending: every one above the history's
   * floor, and the last one at or below it (the service's revision as of the floor).
   * Kept after a service empties, until its emptying falls below the floor.
   */
  readonly #logs = new Map<string, number[]>();
  /** The registry's revision when the index was last built: nothing older can be rebuilt. */
  #builtAt = 0;
  #changesSinceSweep = 0;
  readonly #observers = new Set<IndexObserver>();
  readonly #waiters = new Set<{ revision: number; done: () => void }>();
  #users = 0;
  #unsubscribe: (() => void) | null = null;

  private constructor(readonly registry: IndexedRegistry) {}

  /** The index of this registry, built on first use; `release()` once per `acquire()`. */
  static acquire(registry: IndexedRegistry, options: IndexOptions = {}): InstanceIndex {
    let index = indexes.get(registry);
    if (index === undefined) {
      index = new InstanceIndex(registry);
      indexes.set(registry, index);
    }
    if (index.#users++ === 0) {
      index.#options = options;
      index.#rebuild();
      index.#unsubscribe = registry.history.subscribe((n) => index.#onNotice(n));
    }
    return index;
  }

  /**
   * Every instance under its sort key, in listing order. Listings wait for `whenSorted()`
   * first (sendView does); a caller that did not gets the rest of the build done now, in one
   * turn. Throws once released: with no user nothing keeps a map current.
   */
  get instances(): SortedMap<Instance> {
    if (this.#users === 0) throw new Error('InstanceIndex: instances read after the last release()');
    if (this.#instances === null) {
      this.#cancelTimers();
      const b = this.#sortBuild ?? this.#startSort();
      if (!this.#readSlice(b, Number.POSITIVE_INFINITY)) throw new Error('InstanceIndex: the build did not finish');
    }
    return this.#instances!;
  }

  /** Whether the sorted instances are built. */
  get sorted(): boolean {
    return this.#instances !== null;
  }

  /** Whether a build of them is under way (begun, not finished). */
  get building(): boolean {
    return this.#sortBuild !== null;
  }

  /** The key of the service a build under way read last or is reading (null: none yet, or no build). */
  get buildPosition(): string | null {
    return this.#sortBuild?.readTo ?? null;
  }

  /**
   * Resolves true once the sorted instances are built: a build not begun begins now (not
   * after SORT_DELAY_MS), its slices back to back with the event loop free between them.
   * False after `timeoutMs` or when the index is released (the build goes on while users
   * remain).
   */
  whenSorted(timeoutMs: number): Promise<boolean> {
    if (this.#instances !== null) return Promise.resolve(true);
    if (this.#users === 0) return Promise.resolve(false);
    if (this.#sortBuild === null) {
      this.#cancelTimers();
      this.#scheduleSlice(this.#startSort());
    }
    return new Promise((resolve) => {
      const done = (built: boolean) => {
        clearTimeout(timer);
        this.#sortWaiters.delete(done);
        resolve(built);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#sortWaiters.add(done);
    });
  }

  /** The index of this registry if some app keeps it current, else null (nothing is built). */
  static live(registry: IndexedRegistry): InstanceIndex | null {
    const index = indexes.get(registry);
    return index !== undefined && index.#users > 0 ? index : null;
  }

  /** Views open on this index (for tests: every listing releases its own). */
  get openViews(): number {
    return this.#observers.size;
  }

  release(): void {
    if (this.#users === 0) return;
    if (--this.#users > 0) return;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#cancelSort();
    for (const done of [...this.#sortWaiters]) done(false);
    for (const o of this.#observers) o.invalidate();
    this.#observers.clear();
    for (const w of this.#waiters) w.done();
    this.#waiters.clear();
  }

  /** The oldest revision a view can be opened at: older changes are not in history (or predate this index). */
  get floor(): number {
    return Math.max(this.registry.history.floor, this.#builtAt);
  }

  /** The revision of a service's last change at `revision` (>= floor); null if it had none by then. */
  serviceRevisionAt(key: string, revision: number): number | null {
    const log = this.#logs.get(key);
    if (log === undefined) return null;
    let lo = 0;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (log[mid]! <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? null : log[lo - 1]!;
  }

  /** Counts of a namespace (or of everything); zero when it has none. */
  namespaceCounts(namespace: string | undefined): Counts {
    if (namespace === undefined) return this.#all;
    return this.#namespaces.get(namespace)?.counts ?? emptyCounts();
  }

  /** Services with at least one instance, in a namespace or in all. */
  serviceCount(namespace: string | undefined): number {
    if (namespace === undefined) return this.services.size;
    return this.#namespaces.get(namespace)?.services ?? 0;
  }

  addObserver(o: IndexObserver): () => void {
    this.#observers.add(o);
    return () => this.#observers.delete(o);
  }

  /** Resolves true once the registry has applied `revision`, false after `timeoutMs` (or when the index closes). */
  waitForRevision(revision: number, timeoutMs: number): Promise<boolean> {
    if (this.registry.revision >= revision) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w = {
        revision,
        done: () => {
          clearTimeout(timer);
          this.#waiters.delete(w);
          resolve(this.registry.revision >= revision);
        },
      };
      const timer = setTimeout(w.done, timeoutMs);
      this.#waiters.add(w);
    });
  }

  #onNotice(n: HistoryNotice): void {
    if (n.kind === 'reset') {
      this.#rebuild();
      for (const o of this.#observers) o.invalidate();
    } else {
      for (const ev of n.events) this.#apply(ev);
      if (n.events.length > 0) for (const o of this.#observers) o.observe(n.events);
      this.#changesSinceSweep += n.events.length;
      if (this.#changesSinceSweep >= SWEEP_EVERY) this.#sweep();
    }
    for (const w of [...this.#waiters]) if (this.registry.revision >= w.revision) w.done();
  }

  #apply(ev: RegistryEvent): void {
    const next = ev.type === 'put' ? ev.instance : null;
    const prev = ev.type === 'put' ? (ev.previous ?? null) : ev.instance;
    const ref = next ?? prev!;
    const key = serviceSortKey(ref.namespace, ref.service);
    let svc = this.services.get(key);
    if (svc === undefined) {
      svc = {
        namespace: ref.namespace,
        service: ref.service,
        revision: ev.revision,
        all: emptyCounts(),
        clusters: new Map(),
      };
      this.services.set(key, svc);
      this.#namespace(ref.namespace).services++;
    }
    const b = this.#sortBuild;
    if (this.#instances !== null) applyToSorted(this.#instances, ev);
    else if (b !== null && b.readTo !== null && key <= b.readTo) {
      applyToSorted(b.map, ev);
      b.changes++;
    }
    if (prev !== null) this.#count(svc, prev, -1);
    if (next !== null) this.#count(svc, next, 1);
    svc.revision = ev.revision;
    this.#log(key, ev.revision);
    if (total(svc.all) === 0) {
      this.services.delete(key);
      this.#namespace(ref.namespace).services--;
    }
  }

  #count(svc: ServiceStats, i: Instance, sign: 1 | -1): void {
    let c = svc.clusters.get(i.cluster);
    if (c === undefined) svc.clusters.set(i.cluster, (c = emptyCounts()));
    countInstance(c, i, sign);
    if (sign < 0 && total(c) === 0) svc.clusters.delete(i.cluster);
    countInstance(svc.all, i, sign);
    countInstance(this.#namespace(i.namespace).counts, i, sign);
    countInstance(this.#all, i, sign);
  }

  #namespace(ns: string): { counts: Counts; services: number } {
    let n = this.#namespaces.get(ns);
    if (n === undefined) this.#namespaces.set(ns, (n = { counts: emptyCounts(), services: 0 }));
    return n;
  }

  #log(key: string, revision: number): void {
    const log = this.#logs.get(key);
    if (log === undefined) this.#logs.set(key, [revision]);
    else if (log[log.length - 1] !== revision) log.push(revision);
  }

  /** Drops log entries no view can ask about (below the floor, but the last one there). */
  #sweep(): void {
    this.#changesSinceSweep = 0;
    const floor = this.floor;
    for (const [key, log] of this.#logs) {
      let keep = 0;
      while (keep + 1 < log.length && log[keep + 1]! <= floor) keep++;
      if (keep > 0) log.splice(0, keep);
      if (log.length === 1 && log[0]! <= floor && !this.services.get(key)) this.#logs.delete(key);
    }
  }

  /**
   * Reads the whole registry (at start, and after a snapshot replaced it): counts and
   * services in one pass over its instances in no order; the sorted instances wait for
   * their first reader (`instances`). This is the only work here that grows with the
   * registry, and it runs where the registry itself was just loaded whole.
   */
  #rebuild(): void {
    const r = this.registry;
    const services: [string, ServiceStats][] = [];
    this.#cancelSort();
    this.#instances = null;
    this.#namespaces.clear();
    this.#logs.clear();
    this.#all = emptyCounts();
    for (const s of r.listServices()) {
      const svc: ServiceStats = {
        namespace: s.namespace,
        service: s.service,
        revision: s.revision,
        all: emptyCounts(),
        clusters: new Map(),
      };
      for (const i of r.eachInstance(s.namespace, s.service)) this.#count(svc, i, 1);
      const key = serviceSortKey(s.namespace, s.service);
      services.push([key, svc]);
      this.#namespace(s.namespace).services++;
      this.#logs.set(key, [s.revision]);
    }
    this.services = SortedMap.fromSorted(services);
    this.#builtAt = r.revision;
    this.#changesSinceSweep = 0;
    if (this.#sortWaiters.size > 0) {
      // A listing waits for it (a snapshot replaced the registry under its build): no delay.
      this.#scheduleSlice(this.#startSort());
      return;
    }
    this.#sortTimer = setTimeout(() => {
      this.#sortTimer = null;
      this.#scheduleSlice(this.#startSort());
    }, this.#options.sortDelayMs ?? SORT_DELAY_MS);
    // Work that waits for the loop to be free: it must not keep a process up.
    this.#sortTimer.unref?.();
  }

  #startSort(): SortBuild {
    this.#sortBuild = {
      map: new SortedMap(),
      readTo: null,
      reading: null,
      began: performance.now(),
      slices: 0,
      changes: 0,
    };
    return this.#sortBuild;
  }

  #scheduleSlice(b: SortBuild): void {
    if (this.#sortSlice !== null) return;
    this.#sortSlice = setImmediate(() => {
      this.#sortSlice = null;
      if (this.#sortBuild !== b) return;
      if (!this.#readSlice(b, performance.now() + (this.#options.sortSliceMs ?? SORT_SLICE_MS))) this.#scheduleSlice(b);
    });
  }

  /**
   * Reads on in key order until `deadline` (performance.now()), looking at the clock every
   * chunk of instances: a small service is sorted and appended whole, a large one read from
   * its live iterator a chunk at a time. True (and the map installed) once every service is read.
   */
  #readSlice(b: SortBuild, deadline: number): boolean {
    const r = this.registry;
    const chunk = this.#options.sortChunk ?? SORT_CHUNK;
    b.slices++;
    for (;;) {
      if (b.reading !== null) {
        for (let n = 1; ; n++) {
          const step = b.reading.next();
          if (step.done === true) {
            b.reading = null;
            break;
          }
          b.map.set(instanceSortKey(step.value), step.value);
          if (n % chunk === 0 && performance.now() >= deadline) return false;
        }
      }
      // The next service after the read position, as the services are now: one created
      // behind it since came in through its changes, one emptied is not there.
      const key = this.services.firstAfter(b.readTo, '\uffff');
      if (key === null) break;
      const svc = this.services.get(key)!;
      b.readTo = key;
      if (total(svc.all) > chunk) b.reading = r.eachInstance(svc.namespace, svc.service);
      else {
        // Every key of it is above the map's (the services before it are read, the ones after not kept).
        for (const i of r.listInstances(svc.namespace, svc.service, { includeDisabled: true }).instances)
          b.map.append(instanceSortKey(i), i);
        if (performance.now() >= deadline) return false;
      }
    }
    this.#sortBuild = null;
    this.#instances = b.map;
    this.#options.log?.debug(
      {
        instances: b.map.size,
        durationMs: Math.round(performance.now() - b.began),
        slices: b.slices,
        changesApplied: b.changes,
      },
      'listing index: sorted instances built',
    );
    for (const done of [...this.#sortWaiters]) done(true);
    return true;
  }

  #cancelTimers(): void {
    if (this.#sortTimer !== null) clearTimeout(this.#sortTimer);
    this.#sortTimer = null;
    if (this.#sortSlice !== null) clearImmediate(this.#sortSlice);
    this.#sortSlice = null;
  }

  #cancelSort(): void {
    this.#sortBuild = null;
    this.#cancelTimers();
  }
}

/** One change to the sorted instances: the previous instance leaves its key (if the change moved or removed it), the new one takes its own. */
function applyToSorted(sorted: SortedMap<Instance>, ev: RegistryEvent): void {
  const next = ev.type === 'put' ? ev.instance : null;
  const prev = ev.type === 'put' ? (ev.previous ?? null) : ev.instance;
  if (prev !== null && (next === null || instanceSortKey(prev) !== instanceSortKey(next)))
    sorted.delete(instanceSortKey(prev));
  if (next !== null) sorted.set(instanceSortKey(next), next);
}
