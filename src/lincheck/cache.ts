/**
 * Lowe's memoization cache, with subsumption for operations of unknown outcome.
 *
 * A configuration of the search is (K, U, state): K the linearized operations whose outcome
 * is known, U the linearized operations whose outcome is unknown. Operations of unknown
 * outcome are optional (they may never take effect), so a configuration with the same K and
 * state but a smaller U has every option the larger one has, and more: (K, U', s) with
 * U' ⊆ U "subsumes" (K, U, s). Entering (K, U, s) is pointless when a subsuming
 * configuration was entered before: it either failed already, or it is an ancestor of this
 * one whose own exploration covers everything this one could do.
 *
 * A hash table keyed by (K, state) hashes, comparing K and the state exactly on a match.
 * Snapshots of K and U live in one growing Int32Array arena, so entries make no garbage.
 */
import type { LinearizedSet } from './bitset.js';

export class ConfigCache {
  private buckets: Int32Array;
  private mask: number;
  private hash1: Int32Array;
  private hash2: Int32Array;
  private snapAt: Int32Array;
  private chain: Int32Array;
  private states: unknown[] = [];
  private arena: Int32Array;
  private arenaUsed = 0;
  size = 0;

  /**
   * `unknownWords`: the length of the U bitsets; `expected`: roughly how many entries to
   * make room for at first (it grows as needed).
   */
  constructor(
    private readonly equal: (a: unknown, b: unknown) => boolean,
    private readonly unknownWords: number,
    expected = 1024,
  ) {
    let cap = 16;
    while (cap < expected && cap < 1 << 16) cap *= 2;
    this.buckets = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    this.hash1 = new Int32Array(cap);
    this.hash2 = new Int32Array(cap);
    this.snapAt = new Int32Array(cap);
    this.chain = new Int32Array(cap);
    this.arena = new Int32Array(cap * (4 + unknownWords));
  }

  /**
   * Adds the configuration (known, unknown, state) and returns true, or returns false (and
   * adds nothing) when a configuration subsuming it is already present.
   */
  add(known: LinearizedSet, unknown: Int32Array, state: unknown, stateHash: number): boolean {
    const h1 = known.z1 ^ stateHash;
    const h2 = known.z2 ^ Math.imul(stateHash, 0x9e3779b1);
    const uw = this.unknownWords;
    for (let i = this.buckets[h1 & this.mask] as number; i >= 0; i = this.chain[i] as number) {
      if (this.hash1[i] !== h1 || this.hash2[i] !== h2) continue;
      const at = this.snapAt[i] as number;
      if (!known.equalsSnapshot(this.arena, at) || !this.equal(this.states[i], state)) continue;
      const u = at + 2 + (this.arena[at + 1] as number);
      let subset = true;
      for (let k = 0; k < uw; k++) {
        if (((this.arena[u + k] as number) & ~(unknown[k] as number)) !== 0) {
          subset = false;
          break;
        }
      }
      if (subset) return false;
    }
    const need = known.snapshotSize() + uw;
    if (this.arenaUsed + need > this.arena.length) {
      const bigger = new Int32Array(Math.max(this.arena.length * 2, this.arenaUsed + need));
      bigger.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = bigger;
    }
    if (this.size === this.hash1.length) this.grow();
    const i = this.size++;
    const at = this.arenaUsed;
    known.writeSnapshot(this.arena, at);
    if (uw > 0) this.arena.set(unknown.subarray(0, uw), at + 2 + (this.arena[at + 1] as number));
    this.snapAt[i] = at;
    this.arenaUsed += need;
    this.hash1[i] = h1;
    this.hash2[i] = h2;
    this.states[i] = state;
    const b = h1 & this.mask;
    this.chain[i] = this.buckets[b] as number;
    this.buckets[b] = i;
    return true;
  }

  private grow(): void {
    const cap = this.hash1.length * 2;
    const copy = (a: Int32Array): Int32Array => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.hash1 = copy(this.hash1);
    this.hash2 = copy(this.hash2);
    this.snapAt = copy(this.snapAt);
    this.chain = new Int32Array(cap);
    this.buckets = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    for (let i = 0; i < this.size; i++) {
      const b = (this.hash1[i] as number) & this.mask;
      this.chain[i] = this.buckets[b] as number;
      this.buckets[b] = i;
    }
  }
}
