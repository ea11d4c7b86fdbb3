/**
 * The joined instances of whole service listings, encoded once per service revision and
 * shared by every answer that lists the same unchanged service with the same filters (issue
 * 21: N clients polling a 10,000-instance service cost N walks of the index, N joins of
 * 10,000 strings and N UTF-8 encodings of 5 MB; with this, one of each per change). As the
 * Consul API's answer cache (src/consul/answer-cache.ts), an entry is keyed by the service's
 * revision, replicated (the same revision holds the same instances on every node, across a
 * snapshot install too), so a lookup after any change to the service misses and a stale
 * body is never served; the stale entry is dropped then.
 *
 * Only the instances array's contents are kept (the Buffers the first answer sent, outside the JS heap): the
 * answer's head carries the registry's revision, which moves with every change anywhere.
 * Bounded by MAX_BYTES in all, least recently used first out, and only bodies of at least
 * MIN_BYTES (a smaller list is answered whole in its first slice, cheaply, anyway).
 */

/** Bytes of bodies kept in all. */
export const MAX_BYTES = 64 * 1024 * 1024;
/** Smaller bodies are not kept. */
export const MIN_BYTES = 64 * 1024;

/** Every cache's hits and bodies kept since start (or the last reset): for tests and benchmarks. */
export const bodyCacheStats = {
  hits: 0,
  puts: 0,
  reset(): void {
    this.hits = 0;
    this.puts = 0;
  },
};

interface Entry {
  readonly revision: number;
  readonly body: readonly Buffer[];
  readonly bytes: number;
}

export class BodyCache {
  /** `service key \0 variant` → body; Map order is the LRU order (a hit moves its entry last). */
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  #hits = 0;

  constructor(
    private readonly maxBytes = MAX_BYTES,
    private readonly minBytes = MIN_BYTES,
  ) {}

  /** Answers served from the cache (for tests and benchmarks). */
  get hits(): number {
    return this.#hits;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The body of `key` at the service's `revision`, or undefined (a stale entry is dropped). */
  get(key: string, revision: number): readonly Buffer[] | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    this.#entries.delete(key);
    if (e.revision !== revision) {
      this.#bytes -= e.bytes;
      return undefined;
    }
    this.#entries.set(key, e);
    this.#hits++;
    bodyCacheStats.hits++;
    return e.body;
  }

  put(key: string, revision: number, body: readonly Buffer[]): void {
    let bytes = 0;
    for (const b of body) bytes += b.length;
    if (bytes < this.minBytes || bytes > this.maxBytes) return;
    const old = this.#entries.get(key);
    if (old !== undefined) {
      // A body at an older revision must not replace a newer one written meanwhile.
      if (old.revision > revision) return;
      this.#entries.delete(key);
      this.#bytes -= old.bytes;
    }
    for (const [k, e] of this.#entries) {
      if (this.#bytes + bytes <= this.maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= e.bytes;
    }
    this.#entries.set(key, { revision, body, bytes });
    this.#bytes += bytes;
    bodyCacheStats.puts++;
  }

  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}
