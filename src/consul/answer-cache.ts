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
 * large service is pinned), at most MAX_VARIANTS per service, MAX_ENTRIES in all, and
 * MAX_CACHED_CHARS of text in all (entries alone would allow 4096 answers of 64 KiB: 256 MiB
 * held for services that do not change). Past a bound, everything is dropped and the cache
 * fills again from the next answers.
 */

/** Answers longer than this are not kept (they are written in slices anyway). */
export const MAX_ANSWER_CHARS = 64 * 1024;
const MAX_VARIANTS = 16;
const MAX_ENTRIES = 4096;
/** The text kept in all, in characters (16 Mi: 16 to 32 MiB of heap). */
export const MAX_CACHED_CHARS = 16 * 1024 * 1024;

interface Entry {
  readonly index: number;
  readonly text: string;
}

export class AnswerCache {
  /** Service key (ChangeFeed.serviceKey) → variant → the answer at an index. */
  readonly #services = new Map<string, Map<string, Entry>>();
  #entries = 0;
  #chars = 0;
  #hits = 0;

  /** Answers served from the cache since it opened (for tests and /v1/agent/self). */
  get hits(): number {
    return this.#hits;
  }

  get size(): number {
    return this.#entries;
  }

  /** Characters of text kept. */
  get chars(): number {
    return this.#chars;
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
    const old = variants?.get(variant);
    if (old === undefined && variants !== undefined && variants.size >= MAX_VARIANTS) return;
    const entries = this.#entries + (old === undefined ? 1 : 0);
    const chars = this.#chars - (old?.text.length ?? 0) + text.length;
    if (entries > MAX_ENTRIES || chars > MAX_CACHED_CHARS) {
      this.clear();
      variants = undefined;
    }
    if (variants === undefined) {
      variants = new Map();
      this.#services.set(serviceKey, variants);
    }
    const replaced = variants.get(variant);
    if (replaced === undefined) this.#entries++;
    else this.#chars -= replaced.text.length;
    this.#chars += text.length;
    variants.set(variant, { index, text });
  }

  /** Drops a service's answers (it changed). */
  forget(serviceKey: string): void {
    const variants = this.#services.get(serviceKey);
    if (variants === undefined) return;
    this.#entries -= variants.size;
    for (const e of variants.values()) this.#chars -= e.text.length;
    this.#services.delete(serviceKey);
  }

  clear(): void {
    this.#services.clear();
    this.#entries = 0;
    this.#chars = 0;
  }
}
