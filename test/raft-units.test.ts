/**
 * Unit tests of the Raft core's small layers, each alone: quorum arithmetic, the
 * in-flight window, per-follower progress, the log (durable + unstable), the unstable
 * buffer, membership changes, the ReadIndex queue and the in-memory storage.
 */
import { describe, expect, it } from 'vitest';
import { applyChange, decodeConfChange, encodeConfChange } from '../raft/confchange.js';
import { Inflights } from '../raft/inflights.js';
import { RaftLog } from '../raft/log.js';
import type { ConfChange, ConfState, Entry, Snapshot } from '../raft/messages.js';
import { entryBytes } from '../raft/messages.js';
import { Progress } from '../raft/progress.js';
import { committedIndex, hasQuorum, quorumSize, voteResult } from '../raft/quorum.js';
import { ReadOnly } from '../raft/readonly.js';
import { MemoryStorage } from '../raft/storage.js';
import { Unstable } from '../raft/unstable.js';
import { enc } from './helpers/raft-network.js';

const e = (index: number, term: number, data = ''): Entry => ({ index, term, type: 'normal', data: enc(data) });
const ents = (from: number, terms: readonly number[]): Entry[] => terms.map((t, i) => e(from + i, t));
const CONF: ConfState = { voters: ['a', 'b', 'c'], learners: [] };
const snap = (index: number, term: number, conf: ConfState = CONF): Snapshot => ({
  meta: { index, term, conf },
  data: new Uint8Array(0),
});

// ---- quorum ------------------------------------------------------------------------------

describe('quorum', () => {
  it('quorumSize is a strict majority', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(quorumSize)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });

  it('committedIndex is the largest index matched by a quorum of the configured voters', () => {
    const cases: { match: Record<string, number>; want: number }[] = [
      { match: {}, want: 0 },
      { match: { a: 5 }, want: 5 },
      { match: { a: 5, b: 3 }, want: 3 },
      { match: { a: 5, b: 3, c: 1 }, want: 3 },
      { match: { a: 5, b: 5, c: 1 }, want: 5 },
      { match: { a: 1, b: 2, c: 3, d: 4 }, want: 2 },
      { match: { a: 9, b: 2, c: 7, d: 4, e: 8 }, want: 7 },
      { match: { a: 0, b: 0, c: 0 }, want: 0 },
    ];
    for (const [i, c] of cases.entries()) {
      expect(
        committedIndex(Object.keys(c.match), (id) => c.match[id] ?? 0),
        `case ${i}`,
      ).toBe(c.want);
    }
  });

  it('committedIndex counts only voters: a missing member matches nothing', () => {
    expect(committedIndex(['a', 'b', 'c'], (id) => (id === 'a' ? 10 : id === 'b' ? 10 : 0))).toBe(10);
    expect(committedIndex(['a', 'b', 'c'], (id) => (id === 'a' ? 10 : 0))).toBe(0);
  });

  it('voteResult: won with a majority of grants, lost once a majority is out of reach, else pending', () => {
    const v = (o: Record<string, boolean>) => new Map(Object.entries(o));
    const five = ['a', 'b', 'c', 'd', 'e'];
    expect(voteResult(['a'], v({ a: true }))).toBe('won');
    expect(voteResult(['a', 'b', 'c'], v({ a: true }))).toBe('pending');
    expect(voteResult(['a', 'b', 'c'], v({ a: true, b: true }))).toBe('won');
    expect(voteResult(['a', 'b', 'c'], v({ a: true, b: false }))).toBe('pending');
    expect(voteResult(['a', 'b', 'c'], v({ a: true, b: false, c: false }))).toBe('lost');
    expect(voteResult(five, v({ a: true, b: false, c: false }))).toBe('pending');
    expect(voteResult(five, v({ a: true, b: false, c: false, d: false }))).toBe('lost');
    expect(voteResult(five, v({ a: true, b: true, c: true }))).toBe('won');
    // Votes from outside the configuration do not count.
    expect(voteResult(['a', 'b', 'c'], v({ a: true, x: true, y: true }))).toBe('pending');
    expect(voteResult(['a', 'b', 'c', 'd'], v({ a: true, b: true }))).toBe('pending');
    expect(voteResult(['a', 'b', 'c', 'd'], v({ a: true, b: false, c: false }))).toBe('lost');
  });

  it('hasQuorum', () => {
    expect(hasQuorum(['a', 'b', 'c'], (id) => id !== 'c')).toBe(true);
    expect(hasQuorum(['a', 'b', 'c'], (id) => id === 'a')).toBe(false);
    expect(hasQuorum(['a', 'b', 'c', 'd'], (id) => id === 'a' || id === 'b')).toBe(false);
    expect(hasQuorum(['a'], () => true)).toBe(true);
  });
});

// ---- inflights -------------------------------------------------------------------------

describe('Inflights', () => {
  it('fills up to its count, refuses more, and frees in order', () => {
    const f = new Inflights(4, 0);
    for (const i of [1, 2, 3]) f.add(i, 10);
    expect(f.full()).toBe(false);
    f.add(4, 10);
    expect(f.full()).toBe(true);
    expect(() => f.add(5, 10)).toThrow();
    f.freeLE(2);
    expect(f.size()).toBe(2);
    expect(f.full()).toBe(false);
    f.freeLE(1); // already freed: nothing happens
    expect(f.size()).toBe(2);
    f.freeLE(10);
    expect(f.size()).toBe(0);
  });

  it('wraps around its ring', () => {
    const f = new Inflights(3, 0);
    let next = 1;
    for (let round = 0; round < 10; round++) {
      while (!f.full()) f.add(next++, 1);
      expect(f.size()).toBe(3);
      f.freeLE(next - 3); // free the oldest
      expect(f.size()).toBe(2);
    }
    f.freeLE(next);
    expect(f.size()).toBe(0);
  });

  it('frees the first one on a heartbeat response', () => {
    const f = new Inflights(2, 0);
    f.add(5, 1);
    f.add(9, 1);
    f.freeFirstOne();
    expect(f.size()).toBe(1);
    expect(f.full()).toBe(false);
    f.freeFirstOne();
    f.freeFirstOne(); // empty: no-op
    expect(f.size()).toBe(0);
  });

  it('is full by bytes as well as by count', () => {
    const f = new Inflights(100, 50);
    f.add(1, 20);
    f.add(2, 20);
    expect(f.full()).toBe(false);
    f.add(3, 20);
    expect(f.full()).toBe(true);
    f.freeLE(1);
    expect(f.full()).toBe(false);
    f.reset();
    expect(f.size()).toBe(0);
    expect(f.full()).toBe(false);
  });

  it('a single message larger than the byte budget still goes out alone', () => {
    const f = new Inflights(10, 50);
    expect(f.full()).toBe(false);
    f.add(1, 500);
    expect(f.full()).toBe(true);
    f.freeLE(1);
    expect(f.full()).toBe(false);
  });
});

// ---- progress --------------------------------------------------------------------------

describe('Progress', () => {
  const pr = (next: number, match = 0): Progress => {
    const p = new Progress(next, false, 4, 0);
    p.match = match;
    return p;
  };

  it('starts probing at next, and a probe pauses until answered', () => {
    const p = pr(5);
    expect(p.state).toBe('probe');
    expect(p.isPaused()).toBe(false);
    p.probeSent = true;
    expect(p.isPaused()).toBe(true);
    expect(p.maybeUpdate(3)).toBe(true);
    expect(p.isPaused()).toBe(false);
    expect(p.match).toBe(3);
    expect(p.next).toBe(5);
  });

  it('state transitions reset next and the window', () => {
    const p = pr(10, 5);
    p.becomeReplicate();
    expect(p.state).toBe('replicate');
    expect(p.next).toBe(6);
    p.optimisticUpdate(8);
    p.inflights.add(8, 1);
    expect(p.next).toBe(9);
    p.becomeProbe();
    expect(p.state).toBe('probe');
    expect(p.next).toBe(6);
    expect(p.inflights.size()).toBe(0);
    p.becomeSnapshot(20);
    expect(p.state).toBe('snapshot');
    expect(p.pendingSnapshot).toBe(20);
    expect(p.isPaused()).toBe(true);
    // Leaving snapshot state: probe from just past the snapshot.
    p.becomeProbe();
    expect(p.next).toBe(21);
    expect(p.pendingSnapshot).toBe(0);
    const q = pr(10, 30);
    q.becomeSnapshot(20);
    q.becomeProbe();
    expect(q.next).toBe(31);
  });

  it('maybeUpdate never moves match back, and keeps 0 <= match < next', () => {
    const p = pr(5, 3);
    expect(p.maybeUpdate(2)).toBe(false);
    expect(p.match).toBe(3);
    expect(p.maybeUpdate(3)).toBe(false);
    expect(p.maybeUpdate(7)).toBe(true);
    expect(p.match).toBe(7);
    expect(p.next).toBe(8);
    expect(p.match).toBeLessThan(p.next);
  });

  it('maybeDecrTo in replicate: a rejection at or below match is stale; otherwise back to match+1', () => {
    const p = pr(5, 5);
    p.becomeReplicate();
    p.optimisticUpdate(10);
    expect(p.maybeDecrTo(5, 0)).toBe(false);
    expect(p.maybeDecrTo(4, 0)).toBe(false);
    expect(p.next).toBe(11);
    expect(p.maybeDecrTo(9, 0)).toBe(true);
    expect(p.next).toBe(6);
  });

  it('maybeDecrTo in probe: only the rejection of the outstanding probe counts, and the hint bounds next', () => {
    const cases: { next: number; match: number; rejected: number; hint: number; ok: boolean; want: number }[] = [
      { next: 10, match: 0, rejected: 5, hint: 5, ok: false, want: 10 }, // stale: not our probe
      { next: 10, match: 0, rejected: 9, hint: 9, ok: true, want: 9 }, // no better hint: step back one
      { next: 10, match: 0, rejected: 9, hint: 3, ok: true, want: 4 }, // the hint skips ahead
      { next: 10, match: 5, rejected: 9, hint: 2, ok: true, want: 6 }, // never below match+1
      { next: 10, match: 0, rejected: 9, hint: 0, ok: true, want: 1 },
      { next: 10, match: 0, rejected: 9, hint: 20, ok: true, want: 9 }, // a hint past prevIndex is capped
    ];
    for (const [i, c] of cases.entries()) {
      const p = pr(c.next, c.match);
      p.probeSent = true;
      expect(p.maybeDecrTo(c.rejected, c.hint), `case ${i}`).toBe(c.ok);
      expect(p.next, `case ${i}`).toBe(c.want);
      if (c.ok) expect(p.probeSent, `case ${i}`).toBe(false);
    }
  });

  it('replicate is paused only by a full window', () => {
    const p = new Progress(1, false, 2, 0);
    p.becomeReplicate();
    p.inflights.add(1, 1);
    expect(p.isPaused()).toBe(false);
    p.inflights.add(2, 1);
    expect(p.isPaused()).toBe(true);
    p.inflights.freeLE(1);
    expect(p.isPaused()).toBe(false);
  });
});

// ---- unstable --------------------------------------------------------------------------

describe('Unstable', () => {
  const u = (offset: number, entries: Entry[], s: Snapshot | null = null): Unstable => {
    const x = new Unstable(offset);
    x.entries = entries;
    x.snapshot = s;
    return x;
  };

  it('maybeFirstIndex / maybeLastIndex / maybeTerm', () => {
    expect(u(5, [e(5, 1)]).maybeFirstIndex()).toBeNull();
    expect(u(5, []).maybeFirstIndex()).toBeNull();
    expect(u(5, [e(5, 1)], snap(4, 1)).maybeFirstIndex()).toBe(5);
    expect(u(5, [], snap(4, 1)).maybeFirstIndex()).toBe(5);

    expect(u(5, [e(5, 1)]).maybeLastIndex()).toBe(5);
    expect(u(5, [e(5, 1)], snap(4, 1)).maybeLastIndex()).toBe(5);
    expect(u(5, [], snap(4, 1)).maybeLastIndex()).toBe(4);
    expect(u(0, []).maybeLastIndex()).toBeNull();

    const cases: { x: Unstable; index: number; want: number | null }[] = [
      { x: u(5, [e(5, 1)]), index: 5, want: 1 },
      { x: u(5, [e(5, 1)]), index: 6, want: null },
      { x: u(5, [e(5, 1)]), index: 4, want: null },
      { x: u(5, [e(5, 1)], snap(4, 1)), index: 4, want: 1 },
      { x: u(5, [e(5, 2)], snap(4, 1)), index: 5, want: 2 },
      { x: u(5, [e(5, 1)], snap(4, 1)), index: 3, want: null },
      { x: u(5, [], snap(4, 1)), index: 4, want: 1 },
      { x: u(5, [], snap(4, 1)), index: 5, want: null },
      { x: u(0, []), index: 5, want: null },
    ];
    for (const [i, c] of cases.entries()) expect(c.x.maybeTerm(c.index), `case ${i}`).toBe(c.want);
  });

  it('stableTo drops entries up to (index, term) only if that entry is still the one handed out', () => {
    const cases: { x: () => Unstable; index: number; term: number; offset: number; len: number }[] = [
      { x: () => u(0, []), index: 5, term: 1, offset: 0, len: 0 },
      { x: () => u(5, [e(5, 1)]), index: 5, term: 1, offset: 6, len: 0 },
      { x: () => u(5, [e(5, 1), e(6, 1)]), index: 5, term: 1, offset: 6, len: 1 },
      { x: () => u(6, [e(6, 2)]), index: 6, term: 1, offset: 6, len: 1 }, // overwritten by a newer term
      { x: () => u(5, [e(5, 1)]), index: 4, term: 1, offset: 5, len: 1 }, // below the buffer
      { x: () => u(5, [e(5, 1)]), index: 6, term: 1, offset: 5, len: 1 }, // beyond it
      { x: () => u(5, [e(5, 1)], snap(4, 1)), index: 5, term: 1, offset: 6, len: 0 },
      { x: () => u(5, [e(5, 1)], snap(4, 1)), index: 4, term: 1, offset: 5, len: 1 }, // the snapshot index: no entries
    ];
    for (const [i, c] of cases.entries()) {
      const x = c.x();
      x.stableTo(c.index, c.term);
      expect([x.offset, x.entries.length], `case ${i}`).toEqual([c.offset, c.len]);
    }
  });

  it('stableSnapTo clears only the matching snapshot', () => {
    const x = u(5, [], snap(4, 1));
    x.stableSnapTo(3);
    expect(x.snapshot).not.toBeNull();
    x.stableSnapTo(4);
    expect(x.snapshot).toBeNull();
  });

  it('restore replaces everything with a snapshot', () => {
    const x = u(5, [e(5, 1), e(6, 1)]);
    x.restore(snap(9, 2));
    expect(x.offset).toBe(10);
    expect(x.entries).toEqual([]);
    expect(x.maybeLastIndex()).toBe(9);
    expect(x.maybeTerm(9)).toBe(2);
  });

  it('truncateAndAppend: append after, replace from below the offset, or truncate in the middle', () => {
    const cases: { x: () => Unstable; add: Entry[]; offset: number; want: Entry[] }[] = [
      { x: () => u(5, [e(5, 1)]), add: [e(6, 1), e(7, 1)], offset: 5, want: [e(5, 1), e(6, 1), e(7, 1)] },
      { x: () => u(5, [e(5, 1)]), add: [e(5, 2), e(6, 2)], offset: 5, want: [e(5, 2), e(6, 2)] },
      { x: () => u(5, [e(5, 1)]), add: [e(4, 2), e(5, 2), e(6, 2)], offset: 4, want: [e(4, 2), e(5, 2), e(6, 2)] },
      { x: () => u(5, [e(5, 1), e(6, 1), e(7, 1)]), add: [e(6, 2)], offset: 5, want: [e(5, 1), e(6, 2)] },
      {
        x: () => u(5, [e(5, 1), e(6, 1), e(7, 1)]),
        add: [e(7, 2), e(8, 2)],
        offset: 5,
        want: [e(5, 1), e(6, 1), e(7, 2), e(8, 2)],
      },
      { x: () => u(5, [e(5, 1)]), add: [], offset: 5, want: [e(5, 1)] },
    ];
    for (const [i, c] of cases.entries()) {
      const x = c.x();
      x.truncateAndAppend(c.add);
      expect(x.offset, `case ${i}`).toBe(c.offset);
      expect(x.entries, `case ${i}`).toEqual(c.want);
    }
  });

  it('slice', () => {
    const x = u(5, [e(5, 1), e(6, 1), e(7, 2)]);
    expect(x.slice(6, 8)).toEqual([e(6, 1), e(7, 2)]);
    expect(x.slice(5, 5)).toEqual([]);
  });
});

// ---- RaftLog ---------------------------------------------------------------------------

describe('RaftLog', () => {
  /** A log with durable entries of `stored` terms from 1 and then `unstable` terms. */
  function log(stored: readonly number[], unstable: readonly number[] = [], compactTo = 0): RaftLog {
    const s = new MemoryStorage(CONF);
    s.append(ents(1, stored));
    if (compactTo > 0) s.compact(compactTo, CONF, new Uint8Array(0));
    const l = new RaftLog(s);
    if (unstable.length > 0) l.append(ents(stored.length + 1, unstable));
    return l;
  }

  it('term(): the snapshot term stays readable; below it is compacted, past the end unavailable', () => {
    const l = log([1, 1, 2, 2, 3], [3, 4], 2);
    expect(l.firstIndex()).toBe(3);
    expect(l.lastIndex()).toBe(7);
    expect(l.term(1)).toBe('compacted');
    expect(l.term(2)).toBe(1);
    expect(l.term(3)).toBe(2);
    expect(l.term(5)).toBe(3);
    expect(l.term(7)).toBe(4);
    expect(l.term(8)).toBe('unavailable');
    expect(l.lastTerm()).toBe(4);
    expect(log([]).term(0)).toBe(0);
  });

  it('isUpToDate compares last term first, then length (§5.4.1)', () => {
    const l = log([1, 2, 3]);
    const cases: [number, number, boolean][] = [
      // lastIndex, lastTerm, up to date
      [2, 4, true],
      [3, 4, true],
      [4, 4, true],
      [2, 2, false],
      [3, 2, false],
      [4, 2, false],
      [2, 3, false],
      [3, 3, true],
      [4, 3, true],
    ];
    for (const [i, [li, lt, want]] of cases.entries()) expect(l.isUpToDate(li, lt), `case ${i}`).toBe(want);
  });

  it('findConflict returns the first entry that is missing or has another term', () => {
    const l = log([1, 2, 3]);
    const cases: [Entry[], number][] = [
      [[], 0],
      [ents(1, [1, 2, 3]), 0],
      [ents(2, [2, 3]), 0],
      [ents(3, [3]), 0],
      [ents(1, [1, 2, 3, 4, 4]), 4],
      [ents(3, [3, 4, 4]), 4],
      [ents(4, [4, 4]), 4],
      [ents(1, [4, 4]), 1],
      [ents(2, [1, 4, 4]), 2],
      [ents(3, [1, 2, 4, 4]), 3],
    ];
    for (const [i, [es, want]] of cases.entries()) expect(l.findConflict(es), `case ${i}`).toBe(want);
  });

  it('maybeAppend: matches, truncates at the first conflict, and commits min(leaderCommit, last new)', () => {
    const cases: {
      prev: [number, number];
      commit: number;
      add: Entry[];
      lastNew: number | null;
      last: number;
      committed: number;
    }[] = [
      // prev does not match
      { prev: [3, 2], commit: 3, add: [e(4, 4)], lastNew: null, last: 3, committed: 1 },
      { prev: [4, 3], commit: 3, add: [e(5, 4)], lastNew: null, last: 3, committed: 1 },
      // match, nothing new
      { prev: [3, 3], commit: 3, add: [], lastNew: 3, last: 3, committed: 3 },
      { prev: [3, 3], commit: 4, add: [], lastNew: 3, last: 3, committed: 3 },
      { prev: [3, 3], commit: 2, add: [], lastNew: 3, last: 3, committed: 2 },
      { prev: [3, 3], commit: 0, add: [], lastNew: 3, last: 3, committed: 1 }, // never decreases
      // match, new entries
      { prev: [3, 3], commit: 5, add: [e(4, 4)], lastNew: 4, last: 4, committed: 4 },
      { prev: [3, 3], commit: 4, add: [e(4, 4), e(5, 4)], lastNew: 5, last: 5, committed: 4 },
      { prev: [2, 2], commit: 4, add: [e(3, 4)], lastNew: 3, last: 3, committed: 3 }, // truncates 3
      { prev: [2, 2], commit: 3, add: [e(3, 3)], lastNew: 3, last: 3, committed: 3 }, // nothing to truncate
      { prev: [1, 1], commit: 3, add: [e(2, 2)], lastNew: 2, last: 3, committed: 2 }, // keeps 3
    ];
    for (const [i, c] of cases.entries()) {
      const l = log([1, 2, 3]);
      l.commitTo(1);
      expect(l.maybeAppend(c.prev[0], c.prev[1], c.commit, c.add), `case ${i}`).toBe(c.lastNew);
      expect(l.lastIndex(), `case ${i}`).toBe(c.last);
      expect(l.committed, `case ${i}`).toBe(c.committed);
    }
  });

  it('maybeAppend refuses to overwrite a committed entry', () => {
    const l = log([1, 2, 3]);
    l.commitTo(2);
    expect(() => l.maybeAppend(1, 1, 3, [e(2, 4)])).toThrow();
  });

  it('findConflictByTerm: the largest index ≤ index whose term ≤ term, stopping at the compacted boundary', () => {
    const l = log([2, 2, 5, 5, 5, 6]);
    const cases: [number, number, { index: number; term: number }][] = [
      [6, 6, { index: 6, term: 6 }],
      [6, 5, { index: 5, term: 5 }],
      [6, 4, { index: 2, term: 2 }],
      [6, 2, { index: 2, term: 2 }],
      [6, 1, { index: 0, term: 0 }],
      [3, 4, { index: 2, term: 2 }],
      [0, 0, { index: 0, term: 0 }],
    ];
    for (const [i, [idx, t, want]] of cases.entries()) expect(l.findConflictByTerm(idx, t), `case ${i}`).toEqual(want);
    // With a snapshot at 2 (term 2), the snapshot term still answers; below it stops.
    const c = log([2, 2, 5, 5, 5, 6], [], 2);
    expect(c.findConflictByTerm(6, 4)).toEqual({ index: 2, term: 2 });
    expect(c.findConflictByTerm(6, 1).term).toBe(0);
    expect(c.findConflictByTerm(6, 1).index).toBeLessThanOrEqual(2);
  });

  it('commitTo never decreases and never passes the last index; maybeCommit only commits an entry of the given term', () => {
    const l = log([1, 1, 2]);
    l.commitTo(2);
    l.commitTo(1);
    expect(l.committed).toBe(2);
    expect(() => l.commitTo(4)).toThrow();
    expect(l.maybeCommit(3, 1)).toBe(false);
    expect(l.committed).toBe(2);
    expect(l.maybeCommit(3, 2)).toBe(true);
    expect(l.committed).toBe(3);
    expect(l.maybeCommit(2, 1)).toBe(false);
  });

  it('hands out committed entries once, in order, within a byte budget', () => {
    const l = log([1, 1, 1, 1], [1, 1]);
    expect(l.hasNextCommittedEntries()).toBe(false);
    l.commitTo(5);
    expect(l.hasNextCommittedEntries()).toBe(true);
    const size = entryBytes(e(1, 1));
    expect(l.nextCommittedEntries(2 * size).map((x) => x.index)).toEqual([1, 2]);
    expect(l.nextCommittedEntries(0).map((x) => x.index)).toEqual([1]); // at least one
    expect(l.nextCommittedEntries(1 << 20).map((x) => x.index)).toEqual([1, 2, 3, 4, 5]);
    l.acceptApplying(4);
    expect(l.nextCommittedEntries(1 << 20).map((x) => x.index)).toEqual([5]);
    l.acceptApplying(5);
    expect(l.hasNextCommittedEntries()).toBe(false);
    expect(() => l.acceptApplying(6)).toThrow();
    expect(() => l.acceptApplying(3)).toThrow();
  });

  it('applied trails applying: the host acknowledges only what it was handed, never moving back', () => {
    const l = log([1, 1, 1, 1, 1]);
    l.commitTo(5);
    l.acceptApplying(3);
    expect([l.applied, l.applying]).toEqual([0, 3]);
    expect(() => l.appliedTo(4)).toThrow(); // not handed out yet
    l.appliedTo(2);
    l.appliedTo(3);
    expect(() => l.appliedTo(2)).toThrow();
    expect(l.nextCommittedEntries(1 << 20).map((x) => x.index)).toEqual([4, 5]);
    expect([l.applied, l.applying]).toEqual([3, 3]);
  });

  it('slice spans durable and unstable entries, and stops at the byte budget', () => {
    const l = log([1, 1, 2], [2, 3]);
    expect(l.slice(2, 6, 1 << 20)).toEqual(ents(2, [1, 2, 2, 3]));
    expect(l.slice(1, 1, 1 << 20)).toEqual([]);
    const size = entryBytes(e(1, 1));
    expect((l.slice(1, 6, 3 * size) as Entry[]).length).toBe(3);
    expect((l.slice(3, 6, 2 * size) as Entry[]).map((x) => x.index)).toEqual([3, 4]);
    expect(l.slice(1, 7, 1 << 20)).toBe('unavailable');
    const c = log([1, 1, 2], [], 2);
    expect(c.slice(2, 4, 1 << 20)).toBe('compacted');
    expect(c.entriesFrom(2, 1 << 20)).toBe('compacted');
    expect(c.entriesFrom(3, 1 << 20)).toEqual(ents(3, [2]));
    expect(c.entriesFrom(4, 1 << 20)).toEqual([]);
  });

  it('append refuses to rewrite below the commit index', () => {
    const l = log([1, 1, 1]);
    l.commitTo(2);
    expect(() => l.append([e(2, 2)])).toThrow();
    expect(l.append([e(3, 2)])).toBe(3);
    expect(l.term(3)).toBe(2);
  });

  it('restore installs a snapshot: the log starts after it and it counts as committed', () => {
    const l = log([1, 1]);
    l.restore(snap(10, 3));
    expect(l.firstIndex()).toBe(11);
    expect(l.lastIndex()).toBe(10);
    expect(l.term(10)).toBe(3);
    expect(l.committed).toBe(10);
    expect(l.hasNextCommittedEntries()).toBe(false);
  });

  it('stableTo moves unstable entries to durable once the host persisted them', () => {
    const s = new MemoryStorage(CONF);
    const l = new RaftLog(s);
    l.append(ents(1, [1, 1]));
    expect(l.unstable.entries.length).toBe(2);
    s.append(ents(1, [1, 1]));
    l.stableTo(2, 1);
    expect(l.unstable.entries.length).toBe(0);
    expect(l.unstable.offset).toBe(3);
    expect(l.lastIndex()).toBe(2);
    expect(l.term(2)).toBe(1);
  });
});

// ---- confchange ------------------------------------------------------------------------

describe('confchange', () => {
  const c = (voters: string[], learners: string[] = []): ConfState => ({ voters, learners });

  it('applyChange: add, promote, demote, remove — and refuse what makes no sense', () => {
    const cases: { conf: ConfState; cc: ConfChange; want: ConfState | 'error' }[] = [
      { conf: c(['a', 'b']), cc: { type: 'addVoter', node: 'c' }, want: c(['a', 'b', 'c']) },
      { conf: c(['b', 'c']), cc: { type: 'addVoter', node: 'a' }, want: c(['a', 'b', 'c']) }, // sorted
      { conf: c(['a', 'b']), cc: { type: 'addVoter', node: 'a' }, want: 'error' },
      { conf: c(['a', 'b'], ['c']), cc: { type: 'addVoter', node: 'c' }, want: c(['a', 'b', 'c']) }, // promote
      { conf: c(['a', 'b']), cc: { type: 'addLearner', node: 'c' }, want: c(['a', 'b'], ['c']) },
      { conf: c(['a', 'b'], ['c']), cc: { type: 'addLearner', node: 'c' }, want: 'error' },
      { conf: c(['a', 'b']), cc: { type: 'addLearner', node: 'b' }, want: c(['a'], ['b']) }, // demote
      { conf: c(['a']), cc: { type: 'addLearner', node: 'a' }, want: 'error' }, // the last voter
      { conf: c(['a', 'b']), cc: { type: 'removeNode', node: 'b' }, want: c(['a']) },
      { conf: c(['a', 'b'], ['c']), cc: { type: 'removeNode', node: 'c' }, want: c(['a', 'b']) },
      { conf: c(['a', 'b']), cc: { type: 'removeNode', node: 'z' }, want: 'error' },
      { conf: c(['a']), cc: { type: 'removeNode', node: 'a' }, want: 'error' },
      { conf: c(['a'], ['b']), cc: { type: 'removeNode', node: 'b' }, want: c(['a']) },
    ];
    for (const [i, t] of cases.entries()) {
      const r = applyChange(t.conf, t.cc);
      if (t.want === 'error') expect(r.ok, `case ${i}`).toBe(false);
      else expect(r.ok ? r.conf : r.reason, `case ${i}`).toEqual(t.want);
    }
  });

  it('voters and learners stay disjoint', () => {
    let conf = c(['a', 'b', 'c']);
    const steps: ConfChange[] = [
      { type: 'addLearner', node: 'd' },
      { type: 'addVoter', node: 'd' },
      { type: 'addLearner', node: 'a' },
      { type: 'removeNode', node: 'a' },
      { type: 'addLearner', node: 'a' },
    ];
    for (const cc of steps) {
      const r = applyChange(conf, cc);
      expect(r.ok).toBe(true);
      if (r.ok) conf = r.conf;
      for (const l of conf.learners) expect(conf.voters).not.toContain(l);
    }
    expect(conf).toEqual(c(['b', 'c', 'd'], ['a']));
  });

  it('encodes and decodes conf changes, and refuses malformed ones', () => {
    const all: ConfChange[] = [
      { type: 'addVoter', node: 'n1' },
      { type: 'addLearner', node: 'n-2' },
      { type: 'removeNode', node: 'ünïcode' },
    ];
    for (const cc of all) expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    expect(() => decodeConfChange(enc('{"type":"addWitness","node":"x"}'))).toThrow();
    expect(() => decodeConfChange(enc('{"type":"addVoter"}'))).toThrow();
    expect(() => decodeConfChange(enc('{"type":"addVoter","node":7}'))).toThrow();
    expect(() => decodeConfChange(enc('not json'))).toThrow();
  });
});

// ---- ReadOnly ----------------------------------------------------------------------------

describe('ReadOnly (ReadIndex rounds)', () => {
  it('batches queued reads into rounds and confirms every round up to an acknowledged one', () => {
    const ro = new ReadOnly();
    expect(ro.startRound(5)).toBeNull();
    ro.enqueue({ context: enc('a'), from: 'x' });
    ro.enqueue({ context: enc('b'), from: 'y' });
    expect(ro.hasQueued()).toBe(true);
    const r1 = ro.startRound(5)!;
    expect(r1.reads.length).toBe(2);
    expect(r1.index).toBe(5);
    expect(ro.hasQueued()).toBe(false);
    ro.enqueue({ context: enc('c'), from: 'x' });
    const r2 = ro.startRound(7)!;
    expect(r2.id).toBeGreaterThan(r1.id);
    expect(ro.lastRoundId()).toBe(r2.id);
    expect(ro.pendingCount()).toBe(3);
    expect(ro.confirm(r1.id - 1)).toEqual([]);
    expect(ro.confirm(r2.id).map((r) => r.id)).toEqual([r1.id, r2.id]);
    expect(ro.pendingCount()).toBe(0);
  });

  it('reset drops every pending read but keeps round ids increasing', () => {
    const ro = new ReadOnly();
    ro.enqueue({ context: enc('a'), from: 'x' });
    const r1 = ro.startRound(1)!;
    ro.enqueue({ context: enc('b'), from: 'x' });
    ro.reset();
    expect(ro.pendingCount()).toBe(0);
    ro.enqueue({ context: enc('c'), from: 'x' });
    expect(ro.startRound(2)!.id).toBeGreaterThan(r1.id);
  });
});

// ---- MemoryStorage ---------------------------------------------------------------------

describe('MemoryStorage (the storage contract)', () => {
  it('starts with a dummy entry at index 0 and the given membership', () => {
    const s = new MemoryStorage(CONF);
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(0);
    expect(s.term(0)).toBe(0);
    expect(s.term(1)).toBe('unavailable');
    expect(s.initialState()).toEqual({ hardState: { term: 0, vote: null, commit: 0 }, confState: CONF });
  });

  it('append replaces everything from the first new index, and refuses a gap', () => {
    const s = new MemoryStorage(CONF);
    s.append(ents(1, [1, 1, 1]));
    s.append(ents(2, [2]));
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    expect(() => s.append(ents(5, [2]))).toThrow();
  });

  it('entries honours [lo, hi), the byte budget (at least one), and compaction', () => {
    const s = new MemoryStorage(CONF);
    s.append(ents(1, [1, 1, 2, 2]));
    expect(s.entries(2, 4, 1 << 20)).toEqual(ents(2, [1, 2]));
    expect(s.entries(1, 5, 0)).toEqual(ents(1, [1]));
    expect(s.entries(1, 6, 1 << 20)).toBe('unavailable');
    s.compact(2, CONF, enc('state'));
    expect(s.firstIndex()).toBe(3);
    expect(s.term(2)).toBe(1);
    expect(s.term(1)).toBe('compacted');
    expect(s.entries(2, 4, 1 << 20)).toBe('compacted');
    expect(s.entries(3, 5, 1 << 20)).toEqual(ents(3, [2, 2]));
    expect(s.snapshot().meta).toEqual({ index: 2, term: 1, conf: CONF });
  });

  it('compaction and snapshots never move backward', () => {
    const s = new MemoryStorage(CONF);
    s.append(ents(1, [1, 1, 2, 2]));
    s.compact(3, CONF, enc('x'));
    s.compact(2, CONF, enc('y')); // ignored
    expect(s.snapshot().meta.index).toBe(3);
    expect(() => s.compact(9, CONF, enc('z'))).toThrow();
    expect(() => s.applySnapshot(snap(3, 2))).toThrow();
    s.applySnapshot(snap(10, 4));
    expect(s.firstIndex()).toBe(11);
    expect(s.lastIndex()).toBe(10);
    expect(s.term(10)).toBe(4);
    // Appending entries that are all compacted is a no-op; a tail that straddles is trimmed.
    s.append(ents(5, [2, 2]));
    expect(s.lastIndex()).toBe(10);
    s.append(ents(9, [4, 4, 4]));
    expect(s.lastIndex()).toBe(11);
  });
});
