/**
 * The uncompacted Raft log held in memory, so the core can read it synchronously. It is
 * a mirror of the `log` sublevel: NodeStorage changes it only after the batch that makes
 * the same change durable has been written.
 */
import type { Entry } from '../../raft/messages.js';
import { limitSize, type StorageMiss } from '../../raft/storage.js';
import { StorageError } from './errors.js';

/** What an append does to a log: write `fresh`, delete the indices [deleteFrom, deleteTo]. */
export interface AppendPlan {
  readonly fresh: readonly Entry[];
  readonly deleteFrom: number;
  readonly deleteTo: number;
}

/**
 * Plans appending `entries` to a log whose snapshot index is `snapIndex` and last index
 * `lastIndex` (the MemoryStorage rules: the compacted prefix is skipped, a conflicting tail
 * is replaced, a gap is refused).
 */
export function planAppend(snapIndex: number, lastIndex: number, entries: readonly Entry[]): AppendPlan {
  const none: AppendPlan = { fresh: [], deleteFrom: 1, deleteTo: 0 };
  if (entries.length === 0) return none;
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.index !== entries[i - 1]!.index + 1) {
      throw new StorageError(
        'INVALID_ARGUMENT',
        `appended entries are not consecutive: ${entries[i - 1]!.index} is followed by ${entries[i]!.index}`,
      );
    }
  }
  const first = snapIndex + 1;
  const last = entries[entries.length - 1]!.index;
  if (last < first) return none; // all compacted already
  const fresh = entries[0]!.index < first ? entries.slice(first - entries[0]!.index) : entries;
  if (fresh[0]!.index > lastIndex + 1) {
    throw new StorageError(
      'INVALID_ARGUMENT',
      `missing log entries: last index ${lastIndex}, appending at ${fresh[0]!.index}`,
      { index: lastIndex + 1 },
    );
  }
  return { fresh, deleteFrom: last + 1, deleteTo: lastIndex };
}

export class LogStore {
  private snapIndex: number;
  private snapTerm: number;
  /** Entries snapIndex+1 … lastIndex. */
  private ents: Entry[];

  constructor(snapIndex: number, snapTerm: number, ents: Entry[]) {
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    this.ents = ents;
  }

  snapshotIndex(): number {
    return this.snapIndex;
  }

  firstIndex(): number {
    return this.snapIndex + 1;
  }

  lastIndex(): number {
    return this.snapIndex + this.ents.length;
  }

  term(index: number): number | StorageMiss {
    if (index < this.snapIndex) return 'compacted';
    if (index === this.snapIndex) return this.snapTerm;
    if (index > this.lastIndex()) return 'unavailable';
    return this.ents[index - this.snapIndex - 1]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] | StorageMiss {
    if (lo <= this.snapIndex) return 'compacted';
    if (hi > this.lastIndex() + 1) return 'unavailable';
    const base = this.snapIndex + 1;
    return limitSize(this.ents.slice(lo - base, hi - base), maxBytes);
  }

  /** Applies a plan made by planAppend against this log's current shape. */
  apply(plan: AppendPlan): void {
    if (plan.fresh.length === 0) return;
    this.ents.length = plan.fresh[0]!.index - this.snapIndex - 1;
    for (const e of plan.fresh) this.ents.push(e);
  }

  /** Drops entries ≤ index, which becomes the snapshot index with `term`. */
  compactTo(index: number, term: number): void {
    this.ents.splice(0, index - this.snapIndex);
    this.snapIndex = index;
    this.snapTerm = term;
  }

  /** Empties the log: the state now starts at a snapshot (index, term). */
  reset(index: number, term: number): void {
    this.ents = [];
    this.snapIndex = index;
    this.snapTerm = term;
  }
}
