/**
 * The host's chores, done the same way by every test harness: make a Ready durable in a
 * MemoryStorage, and a state machine that records every entry it applies (so the
 * harness can compare nodes and check what was applied where).
 */

import type { Entry } from '../messages.js';
import type { Ready } from '../rawnode.js';
import type { MemoryStorage } from '../storage.js';
import type { AppliedEntry } from './checker.js';
import { InvariantViolation } from './checker.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Step 4 of the Ready cycle (rawnode.ts): the snapshot, then the entries, then the hard
 * state, as one write. A Ready never hands out a snapshot older than the durable one.
 */
export function persistReady(storage: MemoryStorage, rd: Ready): void {
  if (rd.snapshot) {
    const durable = storage.snapshot().meta.index;
    if (rd.snapshot.meta.index <= durable) {
      throw new InvariantViolation(
        'snapshot order',
        `Ready hands out snapshot ${rd.snapshot.meta.index}, not newer than the durable one at ${durable}`,
      );
    }
    storage.applySnapshot(rd.snapshot);
  }
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
}

/** A state machine that keeps every applied entry, in order (no-ops included). */
export interface RecordingStateMachine {
  applied: number;
  entries: AppliedEntry[];
}

/** An entry as the recording state machine keeps it: its data as UTF-8 text. */
export function recordedEntry(e: Entry): AppliedEntry {
  return { index: e.index, term: e.term, type: e.type, data: decoder.decode(e.data) };
}

/** The snapshot data of a recording state machine. */
export function encodeRecording(sm: RecordingStateMachine): Uint8Array {
  return encoder.encode(JSON.stringify(sm));
}

/** Empty data (a snapshot taken before anything was applied) is the empty state machine. */
export function decodeRecording(data: Uint8Array): RecordingStateMachine {
  if (data.byteLength === 0) return { applied: 0, entries: [] };
  return JSON.parse(decoder.decode(data)) as RecordingStateMachine;
}
