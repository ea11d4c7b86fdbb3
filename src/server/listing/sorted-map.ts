/**
 * An ordered map from string keys to values, for range scans over the registry: sorted
 * blocks (an array of sorted arrays of at most MAX_BLOCK keys), the layout of Python's
 * sortedcontainers. A lookup or seek is two binary searches; an insert or delete splices
 * one block of at most MAX_BLOCK entries, so 200,000 keys cost no more per change than 2,000.
 *
 * Keys compare as JavaScript strings (UTF-16 code units), like the `<` the registry sorts with.
 *
 * Invariants: no block is empty; keys ascend within a block and across blocks;
 * `#last[b]` is the last key of block b.
 */

const MAX_BLOCK = 512;

export class SortedMap<V> {
  #keys: string[][] = [];
  #values: V[][] = [];
  #last: string[] = [];
  #size = 0;

  /** From entries already sorted by key, without duplicates (checked). */
  static fromSorted<V>(entries: Iterable<readonly [string, V]>): SortedMap<V> {
    const m = new SortedMap<V>();
    let keys: string[] = [];
    let values: V[] = [];
    let prev: string | null = null;
    for (const [k, v] of entries) {
      if (prev !== null && !(prev < k))
        throw new Error(`SortedMap.fromSorted: ${JSON.stringify(k)} does not follow ${JSON.stringify(prev)}`);
      prev = k;
      keys.push(k);
      values.push(v);
      if (keys.length === MAX_BLOCK / 2) {
        m.#push(keys, values);
        keys = [];
        values = [];
      }
    }
    if (keys.length > 0) m.#push(keys, values);
    return m;
  }

  get size(): number {
    return this.#size;
  }

  get(key: string): V | undefined {
    const b = this.#block(key);
    if (b === this.#keys.length) return undefined;
    const keys = this.#keys[b]!;
    const i = lowerBound(keys, key);
    return keys[i] === key ? this.#values[b]![i] : undefined;
  }

  set(key: string, value: V): void {
    if (this.#keys.length === 0) {
      this.#push([key], [value]);
      return;
    }
    // Past the last key: it goes at the end of the last block.
    const b = Math.min(this.#block(key), this.#keys.length - 1);
    const keys = this.#keys[b]!;
    const values = this.#values[b]!;
    const i = lowerBound(keys, key);
    if (keys[i] === key) {
      values[i] = value;
      return;
    }
    keys.splice(i, 0, key);
    values.splice(i, 0, value);
    this.#last[b] = keys[keys.length - 1]!;
    this.#size++;
    if (keys.length > MAX_BLOCK) {
      const half = keys.length >>> 1;
      const k2 = keys.splice(half);
      const v2 = values.splice(half);
      this.#keys.splice(b + 1, 0, k2);
      this.#values.splice(b + 1, 0, v2);
      this.#last[b] = keys[keys.length - 1]!;
      this.#last.splice(b + 1, 0, k2[k2.length - 1]!);
    }
  }

  /**
   * `set`, for keys that mostly come in ascending order (a map built a piece at a time): a key
   * above every other goes at the end with no search, filling the last block to MAX_BLOCK / 2
   * the way `fromSorted` does; any other key goes where `set` puts it.
   */
  append(key: string, value: V): void {
    const n = this.#keys.length;
    if (n === 0 || !(this.#last[n - 1]! < key)) {
      this.set(key, value);
      return;
    }
    const keys = this.#keys[n - 1]!;
    if (keys.length >= MAX_BLOCK / 2) {
      this.#push([key], [value]);
      return;
    }
    keys.push(key);
    this.#values[n - 1]!.push(value);
    this.#last[n - 1] = key;
    this.#size++;
  }

  delete(key: string): boolean {
    const b = this.#block(key);
    if (b === this.#keys.length) return false;
    const keys = this.#keys[b]!;
    const i = lowerBound(keys, key);
    if (keys[i] !== key) return false;
    keys.splice(i, 1);
    this.#values[b]!.splice(i, 1);
    this.#size--;
    if (keys.length === 0) {
      this.#keys.splice(b, 1);
      this.#values.splice(b, 1);
      this.#last.splice(b, 1);
    } else {
      this.#last[b] = keys[keys.length - 1]!;
    }
    return true;
  }

  /**
   * Calls `visit` for every key k with `after < k < before`, ascending, until it returns
   * false. `after` null: from the first key. The map must not change during the walk.
   */
  forRange(after: string | null, before: string, visit: (key: string, value: V) => boolean): void {
    let b = after === null ? 0 : this.#blockAfter(after);
    let i = after === null || b === this.#keys.length ? 0 : upperBound(this.#keys[b]!, after);
    for (; b < this.#keys.length; b++, i = 0) {
      const keys = this.#keys[b]!;
      const values = this.#values[b]!;
      for (; i < keys.length; i++) {
        const k = keys[i]!;
        if (!(k < before)) return;
        if (!visit(k, values[i]!)) return;
      }
    }
  }

  /** The first key k with `after < k < before`, or null. */
  firstAfter(after: string | null, before: string): string | null {
    let found: string | null = null;
    this.forRange(after, before, (k) => {
      found = k;
      return false;
    });
    return found;
  }

  /** A cursor at the first key k with `after < k < before`; valid only while the map does not change. */
  cursor(after: string | null, before: string): SortedCursor<V> {
    const b = after === null ? 0 : this.#blockAfter(after);
    const i = after === null || b === this.#keys.length ? 0 : upperBound(this.#keys[b]!, after);
    return new SortedCursor(this.#keys, this.#values, b, i, before);
  }

  *entries(): IterableIterator<[string, V]> {
    for (let b = 0; b < this.#keys.length; b++) {
      const keys = this.#keys[b]!;
      const values = this.#values[b]!;
      for (let i = 0; i < keys.length; i++) yield [keys[i]!, values[i]!];
    }
  }

  #push(keys: string[], values: V[]): void {
    this.#keys.push(keys);
    this.#values.push(values);
    this.#last.push(keys[keys.length - 1]!);
    this.#size += keys.length;
  }

  /** The first block whose last key is >= key (the block that holds or would hold it); the block count if none. */
  #block(key: string): number {
    return lowerBound(this.#last, key);
  }

  /** The first block whose last key is > key. */
  #blockAfter(key: string): number {
    return upperBound(this.#last, key);
  }
}

/** The first index whose key is >= k. */
function lowerBound(a: readonly string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose key is > k. */
function upperBound(a: readonly string[], k: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Walks a SortedMap forward: `key` is null once past the range. */
export class SortedCursor<V> {
  key: string | null = null;
  value: V | undefined = undefined;

  constructor(
    private readonly keys: readonly string[][],
    private readonly values: readonly V[][],
    private block: number,
    private index: number,
    private readonly before: string,
  ) {
    this.#load();
  }

  next(): void {
    this.index++;
    this.#load();
  }

  #load(): void {
    while (this.block < this.keys.length && this.index >= this.keys[this.block]!.length) {
      this.block++;
      this.index = 0;
    }
    const k = this.block < this.keys.length ? this.keys[this.block]![this.index]! : null;
    if (k === null || !(k < this.before)) {
      this.key = null;
      this.value = undefined;
      return;
    }
    this.key = k;
    this.value = this.values[this.block]![this.index];
  }
}
