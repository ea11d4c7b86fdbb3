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

  it('close stops everything: no timer left, nothing sent after', () => {
    for (const c of transfer('n2', 10)) pacer.push(c);
    pacer.close();
    expect(vi.getTimerCount()).toBe(0);
    pacer.push(transfer('n2', 1)[0]!);
    vi.runAllTimers();
    expect(sent).toHaveLength(0);
  });
});
