/**
 * Blocking queries: `?index=N&wait=D` parks a read until what it reads changes past N, or
 * the wait ends (then it answers unchanged, as Consul does).
 *
 * The feed follows the registry's history notices (they run inside applyBatch, after memory
 * holds the new state) and wakes only the waiters of what changed: a service's waiters on a
 * change to one of its instances, a namespace's catalog waiters when its set of services or
 * tags changes (CatalogIndex), its namespace-wide waiters (nodes, checks by state) on any
 * change in it. A change to another service never wakes a query on this one. A reset
 * (snapshot installed) wakes everyone: anything may have changed without events.
 *
 * Indexes (`X-Consul-Index`):
 * - per service: the service's revision (replicated, the same on every node), or for an
 *   absent service the registry's emptiedRevision (monotonic, never below the revision of
 *   the service's last change);
 * - per namespace (catalog services, nodes, checks by state): the revision of the last
 *   change seen by this node, and at least the revision the feed started or was reset at.
 *   Derived from this node's stream, so another node may report another value; on one node
 *   it never goes backwards.
 * Every index is at least 1 (Consul clients treat 0 as "no index").
 */
import type { HistoryListener, RegistryEvent } from '../registry/index.js';
import { AnswerCache } from './answer-cache.js';
import { CatalogIndex, type CatalogSource } from './catalog-index.js';
import { IdIndex } from './id-index.js';

export interface NoticeSource {
  readonly revision: number;
  subscribe(listener: HistoryListener): () => void;
}

interface Waiter {
  readonly key: string;
  readonly resolve: () => void;
  timer: NodeJS.Timeout | null;
  readonly onAbort: () => void;
  readonly signal: AbortSignal | undefined;
}

export class ChangeFeed {
  readonly catalog = new CatalogIndex();
  /** Consul service ID → services, for the agent endpoints (findById). */
  readonly ids = new IdIndex();
  /** Answers about one service, written once per service revision for all the queries it wakes. */
  readonly answers = new AnswerCache();
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #namespaceChangedAt = new Map<string, number>();
  readonly #unsubscribe: () => void;
  readonly #closing = new AbortController();
  #floor: number;
  #count = 0;
  #wakeups = 0;
  #closed = false;

  constructor(
    history: NoticeSource,
    private readonly registry: CatalogSource,
  ) {
    this.#floor = history.revision;
    this.catalog.rebuild(registry);
    this.ids.rebuild(registry);
    this.#unsubscribe = history.subscribe((n) => {
      if (n.kind === 'reset') this.#reset(n.revision);
      else this.#take(n.events);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Aborts when the feed closes (the listener is stopping): what ends a query waiting in
   * another datacenter (`?dc=`), which no change here would wake.
   */
  get closing(): AbortSignal {
    return this.#closing.signal;
  }

  /** Parked queries (for tests and metrics). */
  get size(): number {
    return this.#count;
  }

  /**
   * Parked queries woken by a change (or a reset) since the feed opened; not by their wait
   * ending. blockUntilPast parks a query again when what it reads has not moved, so the
   * answers alone cannot show a query woken by another service's change: this can.
   */
  get wakeups(): number {
    return this.#wakeups;
  }

  static serviceKey(namespace: string, service: string): string {
    return `s\u0000${namespace}\u0000${service}`;
  }

  static catalogKey(namespace: string): string {
    return `c\u0000${namespace}`;
  }

  static namespaceKey(namespace: string): string {
    return `n\u0000${namespace}`;
  }

  catalogIndex(namespace: string): number {
    return Math.max(1, this.#floor, this.catalog.changedAt(namespace));
  }

  namespaceIndex(namespace: string): number {
    return Math.max(1, this.#floor, this.#namespaceChangedAt.get(namespace) ?? 0);
  }

  /** Resolves when `key` is woken, `timeoutMs` passes, `signal` aborts, or the feed closes. */
  wait(key: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#closed || timeoutMs <= 0 || signal?.aborted === true) return Promise.resolve();
    return new Promise((resolve) => {
      const w: Waiter = { key, resolve, timer: null, signal, onAbort: () => this.#settle(w) };
      let set = this.#waiters.get(key);
      if (set === undefined) {
        set = new Set();
        this.#waiters.set(key, set);
      }
      set.add(w);
      this.#count++;
      w.timer = setTimeout(() => this.#settle(w), timeoutMs);
      signal?.addEventListener('abort', w.onAbort, { once: true });
    });
  }

  /** Wakes every parked query; later waits return at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    this.#wakeAll();
    this.#closing.abort(new Error('the Consul listener is stopping'));
  }

  #take(events: readonly RegistryEvent[]): void {
    if (events.length === 0) return;
    const woken = new Set<string>();
    for (const e of events) {
      const ns = e.instance.namespace;
      this.#namespaceChangedAt.set(ns, e.revision);
      const service = ChangeFeed.serviceKey(ns, e.instance.service);
      woken.add(service);
      this.answers.forget(service);
      woken.add(ChangeFeed.namespaceKey(ns));
      if (this.catalog.apply(e)) woken.add(ChangeFeed.catalogKey(ns));
      this.ids.apply(e);
    }
    if (this.#count === 0) return;
    for (const key of woken) {
      const set = this.#waiters.get(key);
      if (set !== undefined) for (const w of [...set]) if (this.#settle(w)) this.#wakeups++;
    }
  }

  #reset(revision: number): void {
    this.#floor = Math.max(this.#floor, revision);
    this.#namespaceChangedAt.clear();
    this.catalog.rebuild(this.registry);
    this.ids.rebuild(this.registry);
    this.answers.clear();
    this.#wakeups += this.#count;
    this.#wakeAll();
  }

  #wakeAll(): void {
    for (const set of [...this.#waiters.values()]) for (const w of [...set]) this.#settle(w);
  }

  /** Resolves `w`; false when it was settled already. */
  #settle(w: Waiter): boolean {
    const set = this.#waiters.get(w.key);
    if (set === undefined || !set.delete(w)) return false;
    if (set.size === 0) this.#waiters.delete(w.key);
    this.#count--;
    if (w.timer) clearTimeout(w.timer);
    w.signal?.removeEventListener('abort', w.onAbort);
    w.resolve();
    return true;
  }
}

/**
 * Consul's blocking rule: answer at once unless `index` is given and the current index is
 * not past it; then wait (woken by changes to `key`) until it is, or `waitMs` runs out. An
 * index ahead of this node (a follower behind the node the client last asked) waits for
 * this node to catch up past it. Returns the index to answer with.
 */
export async function blockUntilPast(
  feed: ChangeFeed,
  key: string,
  current: () => number,
  index: number | undefined,
  waitMs: number,
  signal: AbortSignal,
): Promise<number> {
  let now = current();
  if (index === undefined || index === 0 || now > index) return now;
  const deadline = performance.now() + waitMs;
  while (now <= index && !signal.aborted && !feed.closed) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    await feed.wait(key, left, signal);
    now = current();
  }
  return now;
}
