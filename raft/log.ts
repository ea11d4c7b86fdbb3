/**
 * The Raft log as the core sees it: durable entries in the host's Storage followed by
 * unstable ones not yet persisted.
 *
 * Invariants: applied <= applying <= committed <= lastIndex(); firstIndex() - 1 is the
 * snapshot index.
 */
import type { Entry, Snapshot } from './messages.js';
import { entryBytes } from './messages.js';
import type { Storage, StorageMiss } from './storage.js';
import { limitSize } from './storage.js';
import { Unstable } from './unstable.js';

export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  /**
   * Highest index handed to the host for applying (in a Ready). Committed entries are
   * handed out from here on, once each.
   */
  applying: number;
  /**
   * Highest index the host has applied to its state machine, conf changes included, as
   * it acknowledged (RawNode.appliedTo, or a snapshot installed). Lags `applying` while
   * the host is applying; anything that depends on the applied configuration (the next
   * conf change) waits for this one, as etcd requires.
   */
  applied: number;

  constructor(readonly storage: Storage) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  term(index: number): number | StorageMiss {
    // The term of firstIndex()-1 (the snapshot) stays readable.
    if (index < this.firstIndex() - 1) return 'compacted';
    if (index > this.lastIndex()) return 'unavailable';
    const t = this.unstable.maybeTerm(index);
    if (t !== null) return t;
    return this.storage.term(index);
  }

  /** Term of `index`, with a miss read as 0 (no entry can have term 0 except the initial dummy). */
  termOrZero(index: number): number {
    const t = this.term(index);
    return typeof t === 'number' ? t : 0;
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    if (typeof t !== 'number') throw new Error(`raft log: term of last index unavailable (${t})`);
    return t;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The follower side of AppendEntries (§5.3): if our log matches at (prevIndex,
   * prevTerm), keep everything up to the first conflicting entry, append the rest and
   * commit up to min(leaderCommit, last new entry). Returns the last new index, or null
   * when the log does not match at prevIndex.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new Error(`raft log: entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      }
      this.append(entries.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** Index of the first entry whose term differs from ours or that we lack; 0 when all match. */
  findConflict(entries: readonly Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index ≤ `index` whose term is ≤ `term`. Entries
   * between it and `index` all have larger terms, so they cannot match a log whose
   * entry at `index` has term `term`.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = index;
    for (; i > 0; i--) {
      const t = this.term(i);
      if (typeof t !== 'number') break; // compacted or unavailable: stop here
      if (t <= term) return { index: i, term: t };
    }
    return { index: i, term: 0 };
  }

  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    if (after < this.committed) {
      throw new Error(`raft log: append after ${after} is below committed ${this.committed}`);
    }
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return; // never decrease commit
    if (index > this.lastIndex()) {
      throw new Error(`raft log: commit ${index} is beyond last index ${this.lastIndex()}`);
    }
    this.committed = index;
  }

  /** Leader commit rule (§5.4.2): only an entry of the current term is committed by counting. */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.termOrZero(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  /** Committed entries (or a snapshot) up to `index` were handed to the host for applying. */
  acceptApplying(index: number): void {
    if (index > this.committed || index < this.applying) {
      throw new Error(`raft log: applying ${index} out of range [${this.applying}, ${this.committed}]`);
    }
    this.applying = index;
  }

  /** The host applied everything up to `index`; it cannot apply what it was not handed. */
  appliedTo(index: number): void {
    if (index > this.applying || index < this.applied) {
      throw new Error(`raft log: applied ${index} out of range [${this.applied}, ${this.applying}]`);
    }
    this.applied = index;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > Math.max(this.applying, this.firstIndex() - 1);
  }

  nextCommittedEntries(maxBytes: number): readonly Entry[] {
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    const ents = this.slice(lo, hi, maxBytes);
    if (typeof ents === 'string') throw new Error(`raft log: committed entries [${lo}, ${hi}) are ${ents}`);
    return ents;
  }

  /** Entries in [lo, hi) limited to maxBytes (at least one). */
  slice(lo: number, hi: number, maxBytes: number): readonly Entry[] | StorageMiss {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) return 'compacted';
    if (hi > this.lastIndex() + 1) return 'unavailable';
    const out: Entry[] = [];
    const uOff = this.unstable.offset;
    if (lo < uOff) {
      const stored = this.storage.entries(lo, Math.min(hi, uOff), maxBytes);
      if (typeof stored === 'string') return stored;
      // Storage stopped early because of maxBytes: do not go on into unstable entries.
      if (stored.length < Math.min(hi, uOff) - lo) return stored;
      for (const e of stored) out.push(e);
    }
    if (hi > uOff) {
      const u = this.unstable.slice(Math.max(lo, uOff), hi);
      if (out.length === 0) return limitSize(u, maxBytes);
      let size = 0;
      for (const e of out) size += entryBytes(e);
      for (const e of u) {
        size += entryBytes(e);
        if (size > maxBytes) break;
        out.push(e);
      }
    }
    return out;
  }

  /** Entries from `index` on, for sending to a follower. */
  entriesFrom(index: number, maxBytes: number): readonly Entry[] | StorageMiss {
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.meta.index;
    this.unstable.restore(snapshot);
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }
}
