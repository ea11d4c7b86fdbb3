/**
 * Which committed entries the Ready loop applies while the Ready's own write is in flight:
 * only entries already durable in the local log (before the Ready's first new entry), never
 * a membership change or anything after one, and nothing when a snapshot is being installed.
 */
import { describe, expect, it } from 'vitest';
import type { Entry, Snapshot } from '../raft/index.js';
import { afterTurn, splitCommitted, startEarlyApply } from '../src/node/ready-order.js';

const e = (index: number, type: Entry['type'] = 'normal'): Entry => ({
  index,
  term: 1,
  type,
  data: new Uint8Array([index]),
});
const idx = (es: readonly Entry[]) => es.map((x) => x.index);

describe('splitCommitted', () => {
  it('applies early every committed entry when the Ready writes no new entries', () => {
    const { early, late } = splitCommitted({ committedEntries: [e(1), e(2), e(3)], entries: [], snapshot: null });
    expect(idx(early)).toEqual([1, 2, 3]);
    expect(late).toEqual([]);
  });

  it('holds back committed entries that this Ready is itself writing (a follower told to commit what it just received)', () => {
    const { early, late } = splitCommitted({
      committedEntries: [e(4), e(5), e(6), e(7)],
      entries: [e(6), e(7), e(8)],
      snapshot: null,
    });
    expect(idx(early)).toEqual([4, 5]);
    expect(idx(late)).toEqual([6, 7]);
  });

  it('stops at a membership change: it and everything after it wait for the Ready to advance', () => {
    const { early, late } = splitCommitted({
      committedEntries: [e(1), e(2, 'conf'), e(3)],
      entries: [],
      snapshot: null,
    });
    expect(idx(early)).toEqual([1]);
    expect(idx(late)).toEqual([2, 3]);
  });

  it('applies nothing early while a snapshot is installed', () => {
    const snapshot = {
      meta: { index: 9, term: 1, conf: { voters: ['a'], learners: [] } },
      data: new Uint8Array(),
    } as unknown as Snapshot;
    const { early, late } = splitCommitted({ committedEntries: [e(10)], entries: [], snapshot });
    expect(early).toEqual([]);
    expect(idx(late)).toEqual([10]);
  });
});

describe('afterTurn', () => {
  it('runs the work on a later turn of the event loop, after work queued before it', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('queued before'));
    const done = afterTurn(async () => {
      order.push('work');
      return 7;
    });
    await Promise.resolve();
    order.push('same turn');
    expect(await done).toBe(7);
    expect(order).toEqual(['same turn', 'queued before', 'work']);
    await expect(afterTurn(() => Promise.reject(new Error('disk')))).rejects.toThrow('disk');
  });
});

describe('startEarlyApply', () => {
  it('waits a turn beside a synced write, so the fdatasync is under way first', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('queued before'));
    const done = startEarlyApply(true, async () => {
      order.push('apply');
    });
    await done;
    expect(order).toEqual(['queued before', 'apply']);
  });

  it('starts at once beside a write without a sync (the commit-only Ready every answer waits on)', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('queued before'));
    const done = startEarlyApply(false, async () => {
      order.push('apply');
      return 3;
    });
    order.push('same turn');
    expect(await done).toBe(3);
    expect(order).toEqual(['apply', 'same turn']);
    await expect(startEarlyApply(false, () => Promise.reject(new Error('disk')))).rejects.toThrow('disk');
  });
});
