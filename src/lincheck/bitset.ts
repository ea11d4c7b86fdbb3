/**
 * The set of linearized operations, as a bitset with an incremental Zobrist hash and a
 * compact canonical snapshot for the memoization cache.
 *
 * During a search the set is nearly always "every operation up to some point, plus a few
 * beyond", so a snapshot stores only the words from the first word that is not all ones
 * (`lo`) to the last non-zero word: two sets are equal exactly when their snapshots are.
 */
import { mix32 } from './models/index.js';

const FULL = -1;

export class LinearizedSet {
  private readonly words: Int32Array;
  /** Index of the first word that is not all ones. */
  private lo = 0;
  /** One past the last non-zero word. */
  private hi = 0;
  /** Zobrist hashes (XOR of per-element random words), two independent 32-bit halves. */
  z1 = 0;
  z2 = 0;
  private readonly zobrist1: Int32Array;
  private readonly zobrist2: Int32Array;

  constructor(size: number) {
    // One spare word that is never full, so the `lo` scan always stops.
    this.words = new Int32Array((size >>> 5) + 2);
    this.zobrist1 = new Int32Array(size);
    this.zobrist2 = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      this.zobrist1[i] = mix32(2 * i + 1);
      this.zobrist2[i] = mix32(0x7fffffff - 2 * i);
    }
  }

  set(i: number): void {
    const w = i >>> 5;
    const words = this.words;
    words[w] = (words[w] as number) | (1 << (i & 31));
    this.z1 ^= this.zobrist1[i] as number;
    this.z2 ^= this.zobrist2[i] as number;
    if (w >= this.hi) this.hi = w + 1;
    while (words[this.lo] === FULL) this.lo++;
  }

  clear(i: number): void {
    const w = i >>> 5;
    const words = this.words;
    words[w] = (words[w] as number) & ~(1 << (i & 31));
    this.z1 ^= this.zobrist1[i] as number;
    this.z2 ^= this.zobrist2[i] as number;
    if (w < this.lo) this.lo = w;
    while (this.hi > 0 && words[this.hi - 1] === 0) this.hi--;
  }

  /** Words a snapshot takes in an arena: [lo, length, ...words]. */
  snapshotSize(): number {
    return 2 + Math.max(0, this.hi - this.lo);
  }

  /** Writes the snapshot at arena[at]; the arena must have snapshotSize() words free there. */
  writeSnapshot(arena: Int32Array, at: number): void {
    const len = Math.max(0, this.hi - this.lo);
    arena[at] = this.lo;
    arena[at + 1] = len;
    arena.set(this.words.subarray(this.lo, this.lo + len), at + 2);
  }

  /** Whether the snapshot at arena[at] is this set. */
  equalsSnapshot(arena: Int32Array, at: number): boolean {
    const lo = this.lo;
    const len = Math.max(0, this.hi - lo);
    if (arena[at] !== lo || arena[at + 1] !== len) return false;
    const words = this.words;
    const base = at + 2 - lo;
    for (let k = lo; k < lo + len; k++) if (arena[base + k] !== words[k]) return false;
    return true;
  }
}
