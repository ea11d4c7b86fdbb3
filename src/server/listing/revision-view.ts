/**
 * The registry as it was at one revision R, read while the registry moves on: what lets a
 * listing be written in slices over many event-loop turns, and its later pages be read
 * at the first page's revision (the Kubernetes `continue` contract), without copying it.
 *
 * Every instance changed after R has its state at R (its "before image": absent, or the
 * instance as it was) captured from the first event after R that touched it; the events
 * since R come from history when the view opens and from the index while it stays open.
 * Everything else is as the index holds it now. So the view costs memory in proportion to
 * the changes made while it is open, not to the registry.
 *
 * A view opened below the index's floor cannot be built (those events are gone): the
 * caller answers `compacted`. A view whose registry was replaced by a snapshot is `lost`.
 */
import type { Instance, RegistryEvent } from '../../registry/index.js';
import { instanceKey } from '../../registry/model.js';
import { addCounts, type Counts, countInstance, emptyCounts, total } from './counts.js';
import {
  type IndexObserver,
  type InstanceIndex,
  instanceSortKey,
  type ServiceStats,
  serviceSortKey,
} from './instance-index.js';
import { SortedMap } from './sorted-map.js';

/** A service as of the view's revision. */
export interface ServiceAt {
  readonly namespace: string;
  readonly service: string;
  readonly counts: Counts;
  readonly revision: number;
}

export class RevisionView implements IndexObserver {
  /** Instance key (namespace/service/id) -> its state at R (null: absent at R), for every instance changed since. */
  readonly #before = new Map<string, Instance | null>();
  /** The non-null before images, by their sort key at R. */
  readonly #extras = new SortedMap<Instance>();
  /** Per service key: counts at R minus counts now. */
  readonly #delta = new Map<string, Counts>();
  #lost = false;
  readonly #stop: () => void;

  private constructor(
    readonly index: InstanceIndex,
    readonly revision: number,
  ) {
    this.#stop = index.addObserver(this);
  }

  /** A view at the registry's current revision (the first page of a listing). */
  static current(index: InstanceIndex): RevisionView {
    return new RevisionView(index, index.registry.revision);
  }

  /** A view at an older (or the current) revision; 'compacted' when history no longer reaches back to it. */
  static at(index: InstanceIndex, revision: number): RevisionView | 'compacted' {
    if (revision < index.floor || revision > index.registry.revision) return 'compacted';
    const since = index.registry.history.since(revision);
    if (since === 'compacted') return 'compacted';
    const view = new RevisionView(index, revision);
    view.observe(since);
    return view;
  }

  /** True once a snapshot replaced the registry (or the index closed): the view can no longer answer. */
  get lost(): boolean {
    return this.#lost;
  }

  /** How many instances changed since R (what the view holds). */
  get changes(): number {
    return this.#before.size;
  }

  close(): void {
    this.#stop();
  }

  observe(events: readonly RegistryEvent[]): void {
    for (const ev of events) {
      if (ev.revision <= this.revision) continue;
      const next = ev.type === 'put' ? ev.instance : null;
      const prev = ev.type === 'put' ? (ev.previous ?? null) : ev.instance;
      const ref = next ?? prev!;
      const key = instanceKey(ref.namespace, ref.service, ref.id);
      if (!this.#before.has(key)) {
        this.#before.set(key, prev);
        if (prev !== null) this.#extras.set(instanceSortKey(prev), prev);
      }
      const sk = serviceSortKey(ref.namespace, ref.service);
      let d = this.#delta.get(sk);
      if (d === undefined) this.#delta.set(sk, (d = emptyCounts()));
      if (prev !== null) countInstance(d, prev, 1);
      if (next !== null) countInstance(d, next, -1);
    }
  }

  invalidate(): void {
    this.#lost = true;
  }

  /**
   * Calls `visit` for every instance at R whose sort key k has `after < k < before`,
   * ascending, until it returns false. Synchronous: the registry cannot change meanwhile.
   */
  scan(after: string | null, before: string, visit: (key: string, instance: Instance) => boolean): void {
    if (this.#before.size === 0) {
      this.index.instances.forRange(after, before, visit);
      return;
    }
    const extra = this.#extras.cursor(after, before);
    let stopped = false;
    this.index.instances.forRange(after, before, (k, cur) => {
      // Before images that sort before this key come first (a deleted or moved instance).
      while (extra.key !== null && extra.key < k) {
        if (!visit(extra.key, extra.value!)) {
          stopped = true;
          return false;
        }
        extra.next();
      }
      // Changed since R: its state at R (if any) is among the before images.
      if (this.#before.has(instanceKey(cur.namespace, cur.service, cur.id))) return true;
      if (!visit(k, cur)) {
        stopped = true;
        return false;
      }
      return true;
    });
    while (!stopped && extra.key !== null) {
      if (!visit(extra.key, extra.value!)) return;
      extra.next();
    }
  }

  /** Whether an instance of the service changed after R: if not, what the index holds of it now is what it was at R. */
  serviceChanged(namespace: string, service: string): boolean {
    return this.#delta.has(serviceSortKey(namespace, service));
  }

  /** A service at R, or null when it had no instance then. */
  service(namespace: string, service: string): ServiceAt | null {
    const key = serviceSortKey(namespace, service);
    return this.#serviceAt(key, this.index.services.get(key) ?? null, namespace, service);
  }

  /** Like `scan`, over services at R with at least one instance (keys `namespace\0service`). */
  scanServices(after: string | null, before: string, visit: (key: string, s: ServiceAt) => boolean): void {
    // Services changed since R and absent now: merged in by key (few: they emptied while the view was open).
    const gone: string[] = [];
    for (const key of this.#delta.keys()) {
      if ((after === null || key > after) && key < before && this.index.services.get(key) === undefined) gone.push(key);
    }
    gone.sort();
    let g = 0;
    let stopped = false;
    const emitGone = (upTo: string | null): boolean => {
      for (; g < gone.length && (upTo === null || gone[g]! < upTo); g++) {
        const key = gone[g]!;
        const sep = key.indexOf('\0');
        const at = this.#serviceAt(key, null, key.slice(0, sep), key.slice(sep + 1));
        if (at !== null && !visit(key, at)) return false;
      }
      return true;
    };
    this.index.services.forRange(after, before, (key, stats) => {
      if (!emitGone(key)) {
        stopped = true;
        return false;
      }
      const at = this.#serviceAt(key, stats, stats.namespace, stats.service);
      if (at !== null && !visit(key, at)) {
        stopped = true;
        return false;
      }
      return true;
    });
    if (!stopped) emitGone(null);
  }

  #serviceAt(key: string, stats: ServiceStats | null, namespace: string, service: string): ServiceAt | null {
    const d = this.#delta.get(key);
    if (d === undefined) {
      if (stats === null) return null;
      return { namespace, service, counts: stats.all, revision: stats.revision };
    }
    const counts = emptyCounts();
    if (stats !== null) addCounts(counts, stats.all);
    addCounts(counts, d);
    if (total(counts) === 0) return null;
    const revision = this.index.serviceRevisionAt(key, this.revision);
    if (revision === null) return null;
    return { namespace, service, counts, revision };
  }
}
