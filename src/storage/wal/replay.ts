/**
 * Turns the WAL's records, in write order, back into the Raft state: the last hard state,
 * the last snapshot meta, and the log after it. The rules mirror what the writer did:
 *
 * - an entry at index i replaces every entry at or after i (a conflicting tail was replaced);
 * - a snapshot meta drops every entry at or below its index (compaction, or an installed
 *   snapshot, which is followed by a segment header ending the log at the same index);
 * - a segment header ends the log at its `last` index: after an installed snapshot nothing
 *   older survives.
 *
 * Older segments may have been deleted, so the first segment read can start with entries
 * whose predecessors are gone; a later snapshot meta covers them. Whatever remains at the
 * end must run contiguously from the snapshot index + 1.
 */
import type { Entry, HardState, SnapshotMeta } from '../../../raft/messages.js';
import { emptyHardState } from '../../../raft/storage.js';
import { StorageError } from '../errors.js';
import type { SegmentHeader, WalRecord } from './format.js';

export interface ReplayedState {
  readonly hardState: HardState;
  readonly snapMeta: SnapshotMeta;
  /** Entries snapMeta.index+1 … last. */
  readonly entries: Entry[];
}

export class WalReplay {
  private hardState: HardState = emptyHardState;
  private snapMeta: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };
  private ents: Entry[] = [];
  private segmentsSeen = 0;

  constructor(private readonly dir: string) {}

  add(r: WalRecord): void {
    switch (r.kind) {
      case 'hardState':
        this.hardState = r.hardState;
        return;
      case 'snapshot':
        this.snapshot(r.meta);
        return;
      case 'segment':
        this.segment(r.header);
        return;
      case 'entry':
        this.entry(r.entry);
        return;
    }
  }

  finish(): ReplayedState {
    const first = this.ents[0];
    if (first !== undefined && first.index !== this.snapMeta.index + 1) {
      const missing = this.snapMeta.index + 1;
      throw new StorageError(
        'LOG_GAP',
        `${this.dir}: log entry ${missing} is missing (the WAL's log starts at ${first.index}); refusing to start`,
        { index: missing },
      );
    }
    return { hardState: this.hardState, snapMeta: this.snapMeta, entries: this.ents };
  }

  private lastIndex(): number {
    return this.ents.at(-1)?.index ?? this.snapMeta.index;
  }

  private entry(read: Entry): void {
    if (read.index <= this.snapMeta.index) return; // never written; nothing to replace
    // The data is a view into the whole segment file read at open; a copy lets that go.
    const e: Entry = { ...read, data: read.data.slice() };
    const first = this.ents[0]?.index;
    if (first === undefined || e.index < first) {
      this.ents = [e];
      return;
    }
    const last = this.lastIndex();
    if (e.index > last + 1) {
      throw new StorageError(
        'LOG_GAP',
        `${this.dir}: log entry ${last + 1} is missing (the WAL continues at ${e.index}); refusing to start`,
        { index: last + 1 },
      );
    }
    this.ents.length = e.index - first;
    this.ents.push(e);
  }

  private snapshot(meta: SnapshotMeta): void {
    if (meta.index < this.snapMeta.index) return; // the writer never moves it back
    this.snapMeta = meta;
    const first = this.ents[0]?.index;
    if (first !== undefined && first <= meta.index)
      this.ents.splice(0, Math.min(this.ents.length, meta.index - first + 1));
  }

  private segment(h: SegmentHeader): void {
    // A segment after the first one read continues the log exactly where the header says;
    // the log read so far must reach that far, or frames of the previous segment are lost.
    if (this.segmentsSeen > 0 && this.lastIndex() < h.last) {
      throw new StorageError(
        'LOG_GAP',
        `${this.dir}: WAL segment ${h.seq} starts after log entry ${h.last}, the segments before it end at ${this.lastIndex()}; refusing to start`,
        { index: this.lastIndex() + 1 },
      );
    }
    this.segmentsSeen++;
    const first = this.ents[0]?.index;
    if (first !== undefined && this.lastIndex() > h.last) this.ents.length = Math.max(0, h.last - first + 1);
  }
}
