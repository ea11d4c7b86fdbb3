/**
 * Entries and a snapshot that the core has accepted but the host has not yet made
 * durable. `entries[i]` has index `offset + i`. Once the host persists them (advance),
 * they move to the host's Storage and leave this buffer.
 */
import type { Entry, Snapshot } from './messages.js';

export class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];

  constructor(public offset: number) {}

  maybeFirstIndex(): number | null {
    return this.snapshot ? this.snapshot.meta.index + 1 : null;
  }

  maybeLastIndex(): number | null {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.meta.index : null;
  }

  maybeTerm(index: number): number | null {
    if (index < this.offset) {
      return this.snapshot && this.snapshot.meta.index === index ? this.snapshot.meta.term : null;
    }
    const last = this.maybeLastIndex();
    if (last === null || index > last) return null;
    return this.entries[index - this.offset]!.term;
  }

  /**
   * Entries up to (index, term) are durable. If the entry at `index` has changed term
   * since it was handed out (a newer leader overwrote it meanwhile) nothing is stable.
   */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    if (t === null || t !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.meta.index === index) this.snapshot = null;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.meta.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const after = ents[0]!.index;
    if (after === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces everything unstable; the host overwrites the durable tail on persist.
      this.offset = after;
      this.entries = ents.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
