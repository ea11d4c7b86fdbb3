import type { ConfState, Entry, HardState, PiecewiseSnapshot, Snapshot } from './messages.js';
import { entryBytes } from './messages.js';

/** A lookup that can miss because the log was compacted, or because the data is not ready yet. */
export type StorageMiss = 'compacted' | 'unavailable';

/**
 * What the core reads from the host's durable state. Reads are synchronous: a host whose
 * disk is asynchronous keeps the uncompacted log in memory too (it is bounded by
 * compaction), and may answer `snapshot()` with 'unavailable' while it prepares one
 * (the leader then retries on a later tick).
 *
 * Invariants: firstIndex() = snapshot index + 1; the entry at firstIndex()-1 is not
 * readable but its term is (term(firstIndex()-1) answers the snapshot term).
 */
export interface Storage {
  initialState(): { readonly hardState: HardState; readonly confState: ConfState };
  /** Entries in [lo, hi), at least one if lo < hi, then as many as fit in maxBytes. */
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] | StorageMiss;
  term(index: number): number | StorageMiss;
  firstIndex(): number;
  lastIndex(): number;
  /** The snapshot to send a follower that needs compacted entries; its data whole or in pieces. */
  snapshot(): Snapshot | PiecewiseSnapshot | 'unavailable';
}

/**
 * The host's side of storage: how a Ready is made durable. Implementations may be
 * synchronous (memory) or asynchronous (LevelDB); callers always await.
 */
export interface HostStorage extends Storage {
  /** Append entries; any existing entries at or after entries[0].index are replaced. */
  append(entries: readonly Entry[]): void | Promise<void>;
  setHardState(hs: HardState): void | Promise<void>;
  /** Replace the log and state with a snapshot (a follower catching up). Refuses an older snapshot. */
  applySnapshot(snapshot: Snapshot): void | Promise<void>;
  /** Record a snapshot of the host state at `index` (≤ applied) and drop log entries up to it. */
  compact(index: number, conf: ConfState, data: Uint8Array): void | Promise<void>;
}

export const emptyHardState: HardState = { term: 0, vote: null, commit: 0 };

/** Entries of `entries` that fit in `maxBytes`, always at least one. */
export function limitSize(entries: readonly Entry[], maxBytes: number): readonly Entry[] {
  if (entries.length === 0) return entries;
  let size = entryBytes(entries[0]!);
  let n = 1;
  for (; n < entries.length; n++) {
    size += entryBytes(entries[n]!);
    if (size > maxBytes) break;
  }
  return n === entries.length ? entries : entries.slice(0, n);
}

/**
 * In-memory storage: the reference implementation of the storage contract, used by the
 * simulator and unit tests. `ents[0]` is a dummy entry at the snapshot index that carries
 * the snapshot term, as in etcd's MemoryStorage.
 */
export class MemoryStorage implements HostStorage {
  private hardState: HardState = emptyHardState;
  private snap: Snapshot;
  private ents: Entry[];

  constructor(conf: ConfState = { voters: [], learners: [] }) {
    this.snap = { meta: { index: 0, term: 0, conf }, data: new Uint8Array(0) };
    this.ents = [{ index: 0, term: 0, type: 'normal', data: new Uint8Array(0) }];
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.meta.conf };
  }

  private offset(): number {
    return this.ents[0]!.index;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  term(index: number): number | StorageMiss {
    const off = this.offset();
    if (index < off) return 'compacted';
    if (index - off >= this.ents.length) return 'unavailable';
    return this.ents[index - off]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] | StorageMiss {
    const off = this.offset();
    if (lo <= off) return 'compacted';
    if (hi > this.lastIndex() + 1) return 'unavailable';
    return limitSize(this.ents.slice(lo - off, hi - off), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return; // all already compacted
    // Skip the part that was compacted away.
    const fresh = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const at = fresh[0]!.index - this.offset();
    if (at > this.ents.length) {
      throw new Error(`missing log entries: last index ${this.lastIndex()}, appending at ${fresh[0]!.index}`);
    }
    if (at < this.ents.length) this.ents.length = at;
    for (const e of fresh) this.ents.push(e);
  }

  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.meta.index <= this.snap.meta.index) {
      throw new Error(`snapshot ${snapshot.meta.index} is not newer than ${this.snap.meta.index}`);
    }
    this.snap = snapshot;
    this.ents = [{ index: snapshot.meta.index, term: snapshot.meta.term, type: 'normal', data: new Uint8Array(0) }];
  }

  compact(index: number, conf: ConfState, data: Uint8Array): void {
    const off = this.offset();
    if (index <= off) return; // never move the snapshot backwards
    if (index > this.lastIndex()) throw new Error(`compact ${index} is beyond last index ${this.lastIndex()}`);
    const term = this.ents[index - off]!.term;
    this.snap = { meta: { index, term, conf }, data };
    this.ents = [{ index, term, type: 'normal', data: new Uint8Array(0) }, ...this.ents.slice(index - off + 1)];
  }
}
