/**
 * Encoded answers about one service, shared by the blocking queries that wait on it: when a
 * change wakes a thousand queries on the same service with the same parameters (consul.watch,
 * Prometheus, consul-template all ask alike), the body is written once per service revision,
 * not once per query.
 *
 * An entry is keyed by the service's index (its revision, replicated: the same revision
 * holds the same instances on every node) and the answer's variant (endpoint and filters);
 * a lookup with another index misses, so a stale body is never served. The change feed
 * drops a service's entries when it changes (memory only: they would miss anyway) and all
 * of them on a reset. Bounded: only answers written whole in their first slice are kept (no
 * large service is pinned), at most MAX_VARIANTS per service and MAX_ENTRIES in all (past
 * that, everything is dropped and the cache fills again from the next answers).
 */

/** Answers longer than this are not kept (they are written in slices anyway). */
export const MAX_ANSWER_CHARS = 64 * 1024;
const MAX_VARIANTS = 16;
const MAX_ENTRIES = 4096;

interface Entry {
  readonly index: number;
  readonly text: string;
}

export class AnswerCache {
  /** Service key (ChangeFeed.serviceKey) → variant → the answer at an index. */
  readonly #services = new Map<string, Map<string, Entry>>();
  #entries = 0;
  #hits = 0;

  /** Answers served from the cache since it opened (for tests and /v1/agent/self). */
  get hits(): number {
    return this.#hits;
  }

  get size(): number {
    return this.#entries;
  }

  get(serviceKey: string, variant: string, index: number): string | undefined {
    const e = this.#services.get(serviceKey)?.get(variant);
    if (e === undefined || e.index !== index) return undefined;
    this.#hits++;
    return e.text;
  }

  put(serviceKey: string, variant: string, index: number, text: string): void {
    if (text.length > MAX_ANSWER_CHARS) return;
    let variants = this.#services.get(serviceKey);
    if (variants === undefined) {
      if (this.#entries >= MAX_ENTRIES) this.clear();
      variants = new Map();
      this.#services.set(serviceKey, variants);
    }
    if (!variants.has(variant)) {
      if (variants.size >= MAX_VARIANTS || this.#entries >= MAX_ENTRIES) return;
      this.#entries++;
    }
    variants.set(variant, { index, text });
  }

  /** Drops a service's answers (it changed). */
  forget(serviceKey: string): void {
    const variants = this.#services.get(serviceKey);
    if (variants === undefined) return;
    this.#entries -= variants.size;
    this.#services.delete(serviceKey);
  }

  clear(): void {
    this.#services.clear();
    this.#entries = 0;
  }
}
