/**
 * A bounded ring of the most recent events, so a watcher can resume from a revision it saw.
 *
 * History is memory only and starts empty at open or reload: it can answer `since(r)` only
 * for r at or above its floor (everything after the floor is still held). Below the floor the
 * answer is 'compacted' and the watcher must re-list. Events of one command share a revision;
 * eviction drops a revision's events together so an answer never holds half a command.
 */
import type { RegistryEvent } from './model.js';

export const DEFAULT_HISTORY_SIZE = 10_000;

export type HistoryNotice =
  /** New events (possibly none) and the registry revision they bring it to; an idle advance doubles as progress. */
  | { readonly kind: 'events'; readonly events: readonly RegistryEvent[]; readonly revision: number }
  /** State was replaced (snapshot installed): events between the old and this revision were never seen; watchers must re-list. */
  | { readonly kind: 'reset'; readonly revision: number };

export type HistoryListener = (notice: HistoryNotice) => void;

export class EventHistory {
  readonly #ring: (RegistryEvent | undefined)[];
  #head = 0;
  #size = 0;
  #floor: number;
  #revision: number;
  readonly #listeners = new Set<HistoryListener>();

  constructor(
    readonly capacity: number = DEFAULT_HISTORY_SIZE,
    startRevision = 0,
    private readonly onListenerError: (err: unknown) => void = rethrowLater,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError('history capacity must be a positive integer');
    this.#ring = new Array<RegistryEvent | undefined>(capacity);
    this.#floor = startRevision;
    this.#revision = startRevision;
  }

  /** `since(r)` answers for every r >= floor. */
  get floor(): number {
    return this.#floor;
  }

  get revision(): number {
    return this.#revision;
  }

  get size(): number {
    return this.#size;
  }

  /** Events with revision > `revision`, oldest first; 'compacted' if some of them are gone. */
  since(revision: number): readonly RegistryEvent[] | 'compacted' {
    if (revision < this.#floor) return 'compacted';
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#at(mid).revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    const out: RegistryEvent[] = [];
    for (let i = lo; i < this.#size; i++) out.push(this.#at(i));
    return out;
  }

  /** Called by the registry after each applied batch. */
  append(events: readonly RegistryEvent[], revision: number): void {
    for (const e of events) {
      if (this.#size === this.capacity) this.#evictOldestRevision();
      this.#ring[(this.#head + this.#size) % this.capacity] = e;
      this.#size++;
    }
    const advanced = revision > this.#revision;
    this.#revision = Math.max(this.#revision, revision);
    if (events.length > 0 || advanced) this.#notify({ kind: 'events', events, revision: this.#revision });
  }

  /** Forgets everything: the state jumped to `revision` without events (snapshot installed). */
  reset(revision: number): void {
    this.#ring.fill(undefined);
    this.#head = 0;
    this.#size = 0;
    this.#floor = revision;
    this.#revision = revision;
    this.#notify({ kind: 'reset', revision });
  }

  /**
   * Listeners run synchronously inside applyBatch and must not block. One that throws does
   * not stop the others or the apply; its error goes to `onListenerError` (by default
   * rethrown on a microtask, so a bug still surfaces as an uncaught exception).
   */
  subscribe(listener: HistoryListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #at(i: number): RegistryEvent {
    const e = this.#ring[(this.#head + i) % this.capacity];
    if (e === undefined) throw new Error(`history slot ${i} is empty`);
    return e;
  }

  #evictOldestRevision(): void {
    const oldest = this.#at(0).revision;
    this.#floor = Math.max(this.#floor, oldest);
    while (this.#size > 0 && this.#at(0).revision <= oldest) {
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.capacity;
      this.#size--;
    }
  }

  #notify(notice: HistoryNotice): void {
    for (const l of [...this.#listeners]) {
      try {
        l(notice);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}

function rethrowLater(err: unknown): void {
  queueMicrotask(() => {
    throw err;
  });
}
