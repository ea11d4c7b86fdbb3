/**
 * SnapshotPacer: a leader's snapshot goes to the transport a few bytes' worth per turn,
 * waits while the stream is backlogged, and is dropped when the leader's term is over.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type SnapshotChunk, SnapshotPacer } from '../src/node/snapshot-pacer.js';

const KIB = 1024;
const conf = { voters: ['n1', 'n2', 'n3'], learners: [] };

/** A transfer of `count` chunks of 1 KiB to `to`, in term `term`, for snapshot `index`. */
function transfer(to: string, count: number, term = 1, index = 100): SnapshotChunk[] {
  return Array.from({ length: count }, (_, i) => ({
    type: 'snapshot' as const,
    from: 'n1',
    to,
    term,
    meta: { index, term, conf },
    offset: i * KIB,
    total: count * KIB,
    chunk: new Uint8Array(KIB),
    commit: index,
  }));
}

describe('SnapshotPacer', () => {
  let sent: SnapshotChunk[];
  let backlog: Map<string, number>;
  let term: number;
  let pacer: SnapshotPacer;

  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    backlog = new Map();
    term = 1;
    pacer = new SnapshotPacer({
      send: (c) => sent.push(c),
      backlog: (to) => backlog.get(to) ?? 0,
      leadsIn: (t) => t === term,
      bytesPerTurn: 3 * KIB,
      backlogWaitMs: 5,
    });
  });
  afterEach(() => {
    pacer.close();
    vi.useRealTimers();
  });

  it('sends a transfer a few chunks per turn, in order, nothing in the turn that queued it', () => {
    for (const c of transfer('n2', 10)) pacer.push(c);
    expect(sent).toHaveLength(0);
    const perTurn: number[] = [];
    while (pacer.pending('n2') > 0) {
      const before = sent.length;
      vi.advanceTimersToNextTimer();
      perTurn.push(sent.length - before);
    }
    expect(perTurn).toEqual([3, 3, 3, 1]);
    expect(sent.map((c) => c.offset)).toEqual(transfer('n2', 10).map((c) => c.offset));
  });

  it('waits while the stream to that peer is backlogged, and serves other peers meanwhile', () => {
    backlog.set('n2', 3 * KIB);
    for (const c of [...transfer('n2', 4), ...transfer('n3', 2)]) pacer.push(c);
    vi.advanceTimersToNextTimer();
    expect(sent.map((c) => c.to)).toEqual(['n3', 'n3']);
    vi.advanceTimersByTime(50);
    expect(sent.filter((c) => c.to === 'n2')).toHaveLength(0);
    backlog.set('n2', 0);
    vi.advanceTimersToNextTimer(); // the next look at a backlogged peer
    expect(sent.filter((c) => c.to === 'n2')).toHaveLength(3);
  });

  it("drops what is left when this node no longer leads in the transfer's term", () => {
    for (const c of transfer('n2', 10)) pacer.push(c);
    vi.advanceTimersToNextTimer();
    expect(sent).toHaveLength(3);
    term = 2;
    vi.runAllTimers();
    expect(sent).toHaveLength(3);
    expect(pacer.pending('n2')).toBe(0);
  });

  it('a new transfer to the same peer replaces the rest of the old one', () => {
    const old = transfer('n2', 10, 1, 100);
    for (const c of old.slice(0, 6)) pacer.push(c);
    vi.advanceTimersToNextTimer();
    for (const c of transfer('n2', 2, 1, 200)) pacer.push(c);
    for (const c of old.slice(6)) pacer.push(c); // late pieces of the old transfer: ignored
    vi.runAllTimers();
    expect(sent.map((c) => `${c.meta.index}@${c.offset / KIB}`)).toEqual(['100@0', '100@1', '100@2', '200@0', '200@1']);
  });

  it('the same transfer started over while it goes out sends no chunk twice', () => {
    // Raft starts a transfer over after a few election timeouts without an answer; a
    // 257-MB snapshot took longer than that to send, and every restart sent it from 0.
    for (const c of transfer('n2', 10)) pacer.push(c);
    vi.advanceTimersToNextTimer();
    for (const c of transfer('n2', 10)) pacer.push(c);
    vi.runAllTimers();
    expect(sent.map((c) => c.offset / KIB)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('the same transfer started again once it has all gone out is sent again whole', () => {
    for (const c of transfer('n2', 4)) pacer.push(c);
    vi.runAllTimers();
    for (const c of transfer('n2', 4)) pacer.push(c); // the follower may have lost it (a restart)
    vi.runAllTimers();
    expect(sent.map((c) => c.offset / KIB)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
  });

  it('the same snapshot in a new term is a new transfer', () => {
    for (const c of transfer('n2', 6, 1)) pacer.push(c);
    vi.advanceTimersToNextTimer();
    term = 2;
    for (const c of transfer('n2', 6, 2)) pacer.push(c);
    vi.runAllTimers();
    expect(sent.map((c) => `${c.term}@${c.offset / KIB}`)).toEqual([
      '1@0',
      '1@1',
      '1@2',
      ...[0, 1, 2, 3, 4, 5].map((o) => `2@${o}`),
    ]);
  });

  describe('compactionFloor', () => {
    it('holds the log at the index of a snapshot sent until the follower has caught up, for holdLogMs at most', () => {
      const held = new SnapshotPacer({
        send: () => undefined,
        backlog: () => 0,
        leadsIn: (t) => t === term,
        holdLogMs: 60_000,
      });
      const match = new Map<string, number>([['n2', 10]]);
      const floor = (to: number) => held.compactionFloor(to, (peer) => match.get(peer));
      expect(floor(1000)).toBe(1000);
      for (const c of transfer('n2', 2, 1, 500)) held.push(c);
      expect(floor(1000)).toBe(500);
      match.set('n2', 800); // installed, and caught up some way since
      expect(floor(1000)).toBe(800);
      vi.advanceTimersByTime(60_001);
      expect(floor(1000)).toBe(1000);
      held.close();
    });

    it('lets go of a follower once it has caught up, so a later fall behind gets a snapshot as before', () => {
      const match = new Map<string, number>([['n2', 10]]);
      const floor = (to: number) => pacer.compactionFloor(to, (peer) => match.get(peer));
      for (const c of transfer('n2', 2, 1, 500)) pacer.push(c);
      expect(floor(900)).toBe(500);
      match.set('n2', 950);
      expect(floor(900)).toBe(900);
      match.set('n2', 960); // it stopped here (killed), and the log moves on
      expect(floor(2000)).toBe(2000);
    });

    it('keeps holding for a follower sent a snapshot past the compaction asked for, until it has caught up', () => {
      const match = new Map<string, number>([['n2', 10]]);
      const floor = (to: number) => pacer.compactionFloor(to, (peer) => match.get(peer));
      for (const c of transfer('n2', 2, 1, 500)) pacer.push(c);
      // A compaction that stops short of the snapshot's index needs no hold...
      expect(floor(400)).toBe(400);
      // ...but the follower is still installing it: a later compaction must not pass it.
      expect(floor(900)).toBe(500);
      match.set('n2', 950);
      expect(floor(900)).toBe(900);
    });

    it('lets go of a peer that left the configuration, and of everything once this node no longer leads', () => {
      for (const c of [...transfer('n2', 1, 1, 300), ...transfer('n3', 1, 1, 400)]) pacer.push(c);
      const match = new Map<string, number>([['n3', 0]]); // n2 was removed
      expect(pacer.compactionFloor(1000, (peer) => match.get(peer))).toBe(400);
      term = 2;
      expect(pacer.compactionFloor(1000, (peer) => match.get(peer))).toBe(1000);
    });
  });

  it('close stops everything: no timer left, nothing sent after', () => {
    for (const c of transfer('n2', 10)) pacer.push(c);
    pacer.close();
    expect(vi.getTimerCount()).toBe(0);
    pacer.push(transfer('n2', 1)[0]!);
    vi.runAllTimers();
    expect(sent).toHaveLength(0);
  });
});
