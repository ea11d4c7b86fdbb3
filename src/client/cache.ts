/**
 * The consumer-side copy of one service: the instances a watch has reported, and what is
 * served from them. Pure data (no I/O, no timers): the feed feeds it, discover reads it.
 *
 * Push-empty protection: a change that would leave a service that had instances with none
 * to offer (every enabled instance gone) is usually a fault (a partition, a registry
 * restored from an old backup), not every provider stopping at once. While protection is on,
 * such a state is held back: the cache keeps serving the last non-empty set and says so
 * (`emptyProtected: true`) until an instance shows up again. The true state is still
 * tracked underneath, so later events apply correctly. The price: a service that really is
 * retired keeps being offered until the consumer restarts or turns protection off.
 */
import type { Instance, WatchEvent } from './types.js';

export interface CacheView {
  /** What consumers are offered (enabled instances; the held set while protection holds). */
  readonly instances: readonly Instance[];
  /** The revision of the last change applied. */
  readonly revision: number;
  /** True while an update that would have emptied the service is held back. */
  readonly emptyProtected: boolean;
}

/** The cache as written to disk. */
export interface CacheSnapshot {
  readonly format: 1;
  readonly namespace: string;
  readonly service: string;
  /** The datacenter it was read from, when the feed named one (`dc`); absent: the endpoints' own. */
  readonly datacenter?: string;
  readonly revision: number;
  /** ms since the epoch when the content was known current. */
  readonly savedAt: number;
  readonly emptyProtected: boolean;
  readonly instances: readonly Instance[];
}

export class ServiceCache {
  readonly #all = new Map<string, Instance>();
  #enabledCount = 0;
  #revision = 0;
  /** The set served instead of an empty one; null when not holding. */
  #held: readonly Instance[] | null = null;
  /** The sorted enabled set, rebuilt lazily after a change. */
  #live: readonly Instance[] | null = [];

  constructor(
    readonly namespace: string,
    readonly service: string,
    private readonly protection: boolean,
  ) {}

  get revision(): number {
    return this.#revision;
  }

  /** Replaces the whole state (an initial list, or a re-list after `compacted`). */
  reset(instances: readonly Instance[], revision: number): void {
    const wouldEmpty = !instances.some((i) => i.enabled);
    this.#change(wouldEmpty, () => {
      this.#all.clear();
      this.#enabledCount = 0;
      for (const i of instances) this.#put(i);
      this.#revision = revision;
    });
  }

  /** Applies a watch event; returns false for one already applied (older than the cache). */
  apply(ev: WatchEvent): boolean {
    switch (ev.type) {
      case 'reset':
        this.reset(ev.instances, ev.revision);
        return true;
      case 'progress':
        return false;
      case 'put':
      case 'delete': {
        if (ev.revision <= this.#revision) return false;
        const old = this.#all.get(ev.instance.id);
        const after = this.#enabledCount - (old?.enabled ? 1 : 0) + (ev.type === 'put' && ev.instance.enabled ? 1 : 0);
        this.#change(after === 0, () => {
          if (old) this.#remove(old);
          if (ev.type === 'put') this.#put(ev.instance);
          this.#revision = ev.revision;
        });
        return true;
      }
    }
  }

  view(): CacheView {
    return { instances: this.#held ?? this.#liveList(), revision: this.#revision, emptyProtected: this.#held !== null };
  }

  toSnapshot(savedAt: number): CacheSnapshot {
    const v = this.view();
    return {
      format: 1,
      namespace: this.namespace,
      service: this.service,
      revision: v.revision,
      savedAt,
      emptyProtected: v.emptyProtected,
      instances: v.instances,
    };
  }

  /** Seeds an empty cache from disk (kept until the first live list replaces it). */
  load(s: CacheSnapshot): void {
    this.#held = null;
    this.#all.clear();
    this.#enabledCount = 0;
    for (const i of s.instances) this.#put(i);
    this.#revision = s.revision;
    this.#live = null;
  }

  /**
   * Applies `mutate`; when it leaves nothing to offer where something was offered, the
   * previous offer is held (protection on). Any state with an enabled instance releases it.
   */
  #change(wouldEmpty: boolean, mutate: () => void): void {
    const before = wouldEmpty && this.protection && this.#held === null ? this.#liveList() : null;
    mutate();
    this.#live = null;
    if (this.#enabledCount > 0) this.#held = null;
    else if (before !== null && before.length > 0) this.#held = before;
  }

  #put(i: Instance): void {
    this.#all.set(i.id, i);
    if (i.enabled) this.#enabledCount++;
  }

  #remove(i: Instance): void {
    this.#all.delete(i.id);
    if (i.enabled) this.#enabledCount--;
  }

  #liveList(): readonly Instance[] {
    if (this.#live === null) {
      const out: Instance[] = [];
      for (const i of this.#all.values()) if (i.enabled) out.push(i);
      this.#live = sortById(out);
    }
    return this.#live;
  }
}

function sortById(list: Instance[]): Instance[] {
  return list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export interface SelectOptions {
  readonly cluster?: string | undefined;
  /** Every one of these tags. */
  readonly tags?: readonly string[] | undefined;
  /**
   * Only instances fit to take traffic: `healthy`, and `suspect` (the registry lost contact
   * during a wider fault; the provider itself is most likely fine). Default false.
   */
  readonly healthyOnly?: boolean | undefined;
}

/** Filters a view's instances the way `discover` options ask. */
export function select(instances: readonly Instance[], o: SelectOptions): readonly Instance[] {
  if (o.cluster === undefined && (o.tags === undefined || o.tags.length === 0) && !o.healthyOnly) return instances;
  return instances.filter(
    (i) =>
      (o.cluster === undefined || i.cluster === o.cluster) &&
      (o.tags === undefined || o.tags.every((t) => i.tags.includes(t))) &&
      (!o.healthyOnly || i.health === 'healthy' || i.health === 'suspect'),
  );
}
