/**
 * Which committed entries the Ready loop applies while the Ready's own write is in flight:
 * only entries already durable in the local log (before the Ready's first new entry), never
 * a membership change or anything after one, and nothing when a snapshot is being installed.
 */
import { describe, expect, it } from 'vitest';
import type { Entry, Snapshot } from '../raft/index.js';
import { settleBoth, splitCommitted } from '../src/node/ready-order.js';

const e = (index: number, type: Entry['type'] = 'normal'): Entry => ({ index, term: 1, type, data: new Uint8Array([index]) });
const idx = (es: readonly Entry[]) => es.map((x) => x.index);

describe('splitCommitted', () => {
  it('applies early every committed entry when the Ready writes no new entries', () => {
    const { early, late } = splitCommitted({ committedEntries: [e(1), e(2), e(3)], entries: [], snapshot: null });
    expect(idx(early)).toEqual([1, 2, 3]);
    expect(late).toEqual([]);
  });

  it('holds back committed entries that this Ready is itself writing (a follower told to commit what it just received)', () => {
    const { early, late } = splitCommitted({ committedEntries: [e(4), e(5), e(6), e(7)], entries: [e(6), e(7), e(8)], snapshot: null });
    expect(idx(early)).toEqual([4, 5]);
    expect(idx(late)).toEqual([6, 7]);
  });

  it('stops at a membership change: it and everything after it wait for the Ready to advance', () => {
    const { early, late } = splitCommitted({ committedEntries: [e(1), e(2, 'conf'), e(3)], entries: [], snapshot: null });
    expect(idx(early)).toEqual([1]);
    expect(idx(late)).toEqual([2, 3]);
  });

  it('applies nothing early while a snapshot is installed', () => {
    const snapshot = { meta: { index: 9, term: 1, conf: { voters: ['a'], learners: [] } }, data: new Uint8Array() } as unknown as Snapshot;
    const { early, late } = splitCommitted({ committedEntries: [e(10)], entries: [], snapshot });
    expect(early).toEqual([]);
    expect(idx(late)).toEqual([10]);
  });
});

describe('settleBoth', () => {
  it('waits for both before rethrowing the first failure', async () => {
    let slowDone = false;
    const slow = new Promise<void>((r) => setTimeout(() => ((slowDone = true), r()), 20));
    await expect(settleBoth(Promise.reject(new Error('disk')), slow)).rejects.toThrow('disk');
    expect(slowDone).toBe(true);
    await expect(settleBoth(undefined, undefined)).resolves.toBeUndefined();
  });
});
