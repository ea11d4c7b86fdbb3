/**
 * One service's discovery feed: a watch (list, then changes) keeping a `ServiceCache`
 * current, and the cache written to disk on every change. One feed per service however many
 * `discover` calls (clusters, tags, pickers) read it.
 *
 * States: starting (nothing yet) → live (a list arrived; the watch keeps it current), or
 * snapshot (no node answered in time; serving what the disk had, while the watch keeps
 * trying and takes over the moment a node answers). A server without watch streams is
 * polled instead (`pollIntervalMs`).
 */
import type { CacheSnapshot } from './cache.js';
import { ServiceCache } from './cache.js';
import { jitter, sleep } from './delay.js';
import { ClientClosedError, UnavailableError, UnsupportedError } from './errors.js';
import type { NodePool } from './node-pool.js';
import type { SnapshotStore } from './snapshot.js';
import type { ClientLogger, Consistency, Instance, ListResult, WatchEvent } from './types.js';
import type { Watch, WatchOptions } from './watch.js';

export interface FeedContext {
  readonly nodes: NodePool;
  readonly snapshots: SnapshotStore | undefined;
  readonly protection: boolean;
  readonly pollIntervalMs: number;
  readonly random: () => number;
  readonly logger?: ClientLogger | undefined;
  openWatch(options: WatchOptions): Watch;
  list(namespace: string, service: string, cluster: string | undefined, consistency: Consistency): Promise<ListResult>;
}

export class ServiceFeed {
  readonly cache: ServiceCache;
  readonly #ctx: FeedContext;
  readonly #stop = new AbortController();
  readonly #waiters = new Set<() => void>();
  #live = false;
  #polling = false;
  #pollOk = false;
  #snapshot: CacheSnapshot | null = null;
  #error: unknown = null;
  #watch: Watch | null = null;
  #running: Promise<void> | null = null;
  /** The last non-empty answer per discover shape (cluster, tags, health, routing). */
  readonly #lastAnswers = new Map<string, readonly Instance[]>();

  constructor(
    ctx: FeedContext,
    readonly namespace: string,
    readonly service: string,
    /** The datacenter the feed reads (`?dc=`); undefined: the client's default. */
    readonly datacenter: string | undefined = undefined,
  ) {
    this.#ctx = ctx;
    this.cache = new ServiceCache(namespace, service, ctx.protection);
  }

  /** A live list has arrived (the cache reflects the registry, not the disk). */
  get live(): boolean {
    return this.#live;
  }

  /** Connected to a node right now (a watch stream open, or the last poll answered). */
  get connected(): boolean {
    return this.#polling ? this.#pollOk : this.#watch?.node != null;
  }

  /** The snapshot being served until the feed goes live; null otherwise. */
  get snapshot(): CacheSnapshot | null {
    return this.#snapshot;
  }

  /** A non-retryable failure (bad token, bad name) that discover should report. */
  get error(): unknown {
    return this.#error;
  }

  start(): void {
    this.#running ??= this.#run();
  }

  /**
   * Resolves once the feed is live, has failed, every node is known down, or `timeoutMs`
   * passed, whichever comes first.
   */
  async wait(timeoutMs: number): Promise<void> {
    if (this.#live || this.#error !== null) return;
    let release!: () => void;
    const woken = new Promise<void>((r) => (release = r));
    this.#waiters.add(release);
    const offAllDown = this.#ctx.nodes.onAllDown(release);
    const timer = setTimeout(release, timeoutMs);
    try {
      if (this.#ctx.nodes.allDown()) return;
      await woken;
    } finally {
      clearTimeout(timer);
      offAllDown();
      this.#waiters.delete(release);
    }
  }

  /** Serves the disk snapshot until the feed goes live; false when there is none. */
  async loadSnapshot(): Promise<boolean> {
    if (this.#live) return true;
    if (this.#snapshot !== null) return true;
    const s = await this.#ctx.snapshots?.read(this.namespace, this.service, this.datacenter);
    if (s === undefined || this.#live) return this.#live;
    this.cache.load(s);
    this.#snapshot = s;
    this.#ctx.logger?.warn(
      { namespace: this.namespace, service: this.service, revision: s.revision, ageMs: Date.now() - s.savedAt },
      'no node answered; serving the disk snapshot',
    );
    return true;
  }

  /**
   * Push-empty protection for one consumer's view of the service: the cache holds back a
   * service going empty, but a consumer routed to one cluster (VIP, a zone without fallback)
   * or filtering by tag or health can lose all it had while the service keeps others. Such
   * an answer is replaced by the last non-empty one for the same shape, flagged `held`.
   */
  protectAnswer(shape: string, instances: readonly Instance[]): { instances: readonly Instance[]; held: boolean } {
    if (!this.#ctx.protection) return { instances, held: false };
    if (instances.length > 0) {
      this.#lastAnswers.delete(shape);
      this.#lastAnswers.set(shape, instances);
      if (this.#lastAnswers.size > 64) this.#lastAnswers.delete(this.#lastAnswers.keys().next().value!);
      return { instances, held: false };
    }
    const last = this.#lastAnswers.get(shape);
    return last === undefined ? { instances, held: false } : { instances: last, held: true };
  }

  /** Stops the watch; with a snapshot store, writes the cache one last time (stamped now). */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#watch?.close();
    this.#wake();
    await this.#running;
    if (this.#live) this.#save();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      try {
        this.#watch = this.#ctx.openWatch({ namespace: this.namespace, service: this.service, initial: true });
        for await (const ev of this.#watch) {
          failures = 0;
          this.#apply(ev);
        }
        return; // closed
      } catch (err) {
        if (this.#stop.signal.aborted || err instanceof ClientClosedError) return;
        if (err instanceof UnsupportedError) {
          this.#ctx.logger?.warn(
            { namespace: this.namespace, service: this.service },
            'server has no watch streams; polling the service instead',
          );
          return this.#poll();
        }
        this.#error = err;
        this.#wake();
        this.#ctx.logger?.warn(
          { namespace: this.namespace, service: this.service, err: err instanceof Error ? err.message : String(err) },
          'discovery watch failed; retrying',
        );
        await sleep(jitter(Math.min(10_000, 500 * 2 ** failures++), 0.3, this.#ctx.random), this.#stop.signal);
      } finally {
        this.#watch?.close();
        this.#watch = null;
      }
    }
  }

  #apply(ev: WatchEvent): void {
    const changed = this.cache.apply(ev);
    if (ev.type === 'reset') {
      this.#live = true;
      this.#snapshot = null;
      this.#error = null;
      this.#wake();
    }
    if (changed) this.#save();
  }

  async #poll(): Promise<void> {
    this.#polling = true;
    let lastServiceRevision = -1;
    while (!this.#stop.signal.aborted) {
      try {
        let list: ListResult;
        try {
          list = await this.#ctx.list(this.namespace, this.service, undefined, 'linearizable');
        } catch (err) {
          if (!(err instanceof UnavailableError)) throw err;
          list = await this.#ctx.list(this.namespace, this.service, undefined, 'serializable');
        }
        this.#pollOk = true;
        if ((list.serviceRevision !== lastServiceRevision || !this.#live) && list.revision >= this.cache.revision) {
          lastServiceRevision = list.serviceRevision;
          this.#apply({ type: 'reset', revision: list.revision, instances: list.instances, reason: 'initial' });
        }
      } catch (err) {
        if (this.#stop.signal.aborted || err instanceof ClientClosedError) return;
        this.#pollOk = false;
        if (!(err instanceof UnavailableError)) {
          this.#error = err;
          this.#wake();
        }
      }
      await sleep(jitter(this.#ctx.pollIntervalMs, 0.2, this.#ctx.random), this.#stop.signal);
    }
  }

  #save(): void {
    const dc = this.datacenter;
    this.#ctx.snapshots?.save(
      this.namespace,
      this.service,
      () => {
        const s = this.cache.toSnapshot(Date.now());
        return dc === undefined ? s : { ...s, datacenter: dc };
      },
      dc,
    );
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }
}
