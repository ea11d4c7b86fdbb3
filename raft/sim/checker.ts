/**
 * Raft's safety properties, checked as a test harness observes a cluster. One
 * implementation serves every harness: the randomized {@link Simulator}, the
 * data-driven {@link InteractionEnv} and the hand-driven network of the core's unit tests
 * (test/helpers/raft-network.ts). A harness reports what its hosts do (an entry applied,
 * a snapshot installed, a node seen as leader) and the checker throws
 * {@link InvariantViolation} at the first breach:
 *
 * - election safety: at most one leader per term (§5.2);
 * - state machine safety: no two nodes apply different entries at one index (§5.4.3),
 *   and a snapshot never disagrees with what was applied at its index;
 * - leader completeness: a new leader of term T holds every entry committed before T (§5.4);
 * - log matching: two durable logs that hold the same (index, term) agree up to it (§5.3);
 * - a host applies gaplessly and its state machine never moves back.
 */
import type { EntryType, NodeId } from '../messages.js';
import type { MemoryStorage } from '../storage.js';

export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
  constructor(
    readonly invariant: string,
    detail: string,
  ) {
    super(`${invariant}: ${detail}`);
  }
}

/** An entry as a state machine applied it; `data` is a string the harness derives from the bytes. */
export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: string;
}

/** Entry bytes as a string that compares equal exactly when the bytes do (one char per byte). */
export function bytesKey(data: Uint8Array): string {
  let s = '';
  for (let i = 0; i < data.length; i++) s += String.fromCharCode(data[i]!);
  return s;
}

/** What a node's log looks like to {@link SafetyChecker.checkLogMatching}: terms and data keys from `first` on. */
export interface LogView {
  readonly id: NodeId;
  readonly first: number;
  readonly last: number;
  readonly entries: readonly { readonly term: number; readonly data: Uint8Array }[];
}

/** The durable log of a node whose disk is a MemoryStorage, or null when it cannot be read whole. */
export function durableLog(id: NodeId, storage: MemoryStorage): LogView | null {
  const first = storage.firstIndex();
  const last = storage.lastIndex();
  const entries = first <= last ? storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER) : [];
  if (typeof entries === 'string') return null;
  return { id, first, last, entries };
}

/** `termAt` as RawNode.termAt answers it. */
export type TermAt = (index: number) => number | 'compacted' | 'unavailable';

export class SafetyChecker {
  /** Every index some node applied, with the entry applied there first. */
  readonly committed = new Map<number, AppliedEntry>();
  /**
   * An upper bound of the term in which each index was committed: the lowest term any
   * node was in when it applied the entry. (A node learns an index is committed from a
   * leader of its own term or an earlier one, so its term then bounds the commit term.)
   */
  private readonly committedBy = new Map<number, number>();
  /** The leader of each term, as first seen. */
  readonly leaders = new Map<number, NodeId>();
  maxCommitted = 0;

  /**
   * `node` applied `e` while in term `nodeTerm`. State machine safety: whatever applied
   * at that index before is the same entry.
   */
  onApplied(node: NodeId, e: AppliedEntry, nodeTerm: number): void {
    const prev = this.committed.get(e.index);
    if (prev === undefined) {
      this.committed.set(e.index, e);
      this.committedBy.set(e.index, nodeTerm);
      if (e.index > this.maxCommitted) this.maxCommitted = e.index;
      return;
    }
    if (prev.term !== e.term || prev.data !== e.data || prev.type !== e.type) {
      throw new InvariantViolation(
        'state machine safety',
        `${node} applied ${describe(e)} at index ${e.index}, but ${describe(prev)} was applied there before`,
      );
    }
    if (nodeTerm < this.committedBy.get(e.index)!) this.committedBy.set(e.index, nodeTerm);
  }

  /** A host applies `index` after `applied`: applying is gapless. */
  checkApplyOrder(node: NodeId, index: number, applied: number): void {
    if (index !== applied + 1)
      throw new InvariantViolation('apply order', `${node} applied index ${index} after ${applied}`);
  }

  /**
   * `node` installed a snapshot at (index, term) over a state machine that had applied
   * `applied`: the snapshot moves the state machine forward, and agrees with what was
   * applied at its index.
   */
  onSnapshotInstalled(node: NodeId, index: number, term: number, applied: number): void {
    if (index < applied) {
      throw new InvariantViolation(
        'snapshot order',
        `${node} installed snapshot ${index}/${term} over a state machine at ${applied}`,
      );
    }
    const known = this.committed.get(index);
    if (known && known.term !== term) {
      throw new InvariantViolation(
        'snapshot safety',
        `${node} installed snapshot ${index}/${term} but term ${known.term} is committed there`,
      );
    }
  }

  /**
   * `node` is leader of `term`. Election safety: no other node led that term. The first
   * time a term's leader is seen, leader completeness: its log (read through `termAt`)
   * holds every entry committed in an earlier term. (Entries committed in `term` or
   * later are not owed: a paused node may finish winning an old term late.)
   */
  onLeader(node: NodeId, term: number, termAt: TermAt): void {
    const prior = this.leaders.get(term);
    if (prior !== undefined) {
      if (prior !== node)
        throw new InvariantViolation('election safety', `${prior} and ${node} are both leaders of term ${term}`);
      return;
    }
    this.leaders.set(term, node);
    for (const [index, e] of this.committed) {
      if (this.committedBy.get(index)! >= term) continue;
      const t = termAt(index);
      if (t === 'compacted') continue;
      if (t !== e.term) {
        throw new InvariantViolation(
          'leader completeness',
          `leader ${node} of term ${term} has term ${String(t)} at index ${index}, committed with term ${e.term}`,
        );
      }
    }
  }

  /** §5.3 log matching over every pair of logs: the same (index, term) means the same prefix. */
  checkLogMatching(logs: readonly LogView[]): void {
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const x = logs[a]!;
        const y = logs[b]!;
        const lo = Math.max(x.first, y.first);
        const hi = Math.min(x.last, y.last);
        let matchedUpTo = -1;
        for (let i = hi; i >= lo; i--) {
          if (x.entries[i - x.first]!.term === y.entries[i - y.first]!.term) {
            matchedUpTo = i;
            break;
          }
        }
        for (let i = lo; i <= matchedUpTo; i++) {
          const ex = x.entries[i - x.first]!;
          const ey = y.entries[i - y.first]!;
          if (ex.term !== ey.term || bytesKey(ex.data) !== bytesKey(ey.data)) {
            throw new InvariantViolation(
              'log matching',
              `${x.id} and ${y.id} agree at ${matchedUpTo} but differ at ${i}`,
            );
          }
        }
      }
    }
  }
}

function describe(e: AppliedEntry): string {
  return `${e.term}/${e.index} ${e.type} ${JSON.stringify(e.data)}`;
}
