/**
 * The storage contract every HostStorage must keep, as shared vitest cases: each
 * implementation's test file calls `storageContract(name, factory)`. Write-side calls may
 * be synchronous or asynchronous, so every one is awaited.
 */
import { afterEach, describe, expect, test } from 'vitest';
import type { ConfState, Entry, HardState, PiecewiseSnapshot, Snapshot } from '../raft/messages.js';
import { emptyHardState, type HostStorage } from '../raft/storage.js';

export interface StorageHarness {
  readonly storage: HostStorage;
  /**
   * The snapshot storage.snapshot() serves once it is ready. Storages that prepare
   * snapshots lazily answer 'unavailable' first; the harness waits (no sleeps) for them.
   */
  readySnapshot(): Promise<Snapshot | PiecewiseSnapshot>;
  /** Releases what the factory took (a database, a temp dir). */
  dispose?(): Promise<void>;
}

export type StorageFactory = () => StorageHarness | Promise<StorageHarness>;

/** Entries [from, from + terms.length) with the given terms; data carries the index and a tag. */
export function makeEntries(from: number, terms: readonly number[], tag = 0, size = 3): Entry[] {
  return terms.map((term, i) => {
    const data = new Uint8Array(size);
    data.fill(tag);
    if (size > 0) data[0] = (from + i) & 0xff;
    return { index: from + i, term, type: (from + i) % 4 === 0 ? 'conf' : 'normal', data };
  });
}

const INF = Number.MAX_SAFE_INTEGER;
const conf1: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };
const conf2: ConfState = { voters: ['n1', 'n2'], learners: ['n4'] };

/** A snapshot with empty data (an empty state machine), which every storage accepts. */
function snapshotAt(index: number, term: number, conf: ConfState): Snapshot {
  return { meta: { index, term, conf }, data: new Uint8Array(0) };
}

export function storageContract(name: string, factory: StorageFactory): void {
  describe(`storage contract: ${name}`, () => {
    const live: StorageHarness[] = [];
    afterEach(async () => {
      for (const h of live.splice(0)) await h.dispose?.();
    });
    const open = async (): Promise<StorageHarness> => {
      const h = await factory();
      live.push(h);
      return h;
    };
    /** A storage holding entries 1..terms.length. */
    const withLog = async (terms: readonly number[]) => {
      const h = await open();
      await h.storage.append(makeEntries(1, terms));
      return h;
    };

    test('initial state is empty', async () => {
      const { storage } = await open();
      expect(storage.initialState()).toEqual({ hardState: emptyHardState, confState: { voters: [], learners: [] } });
      expect(storage.firstIndex()).toBe(1);
      expect(storage.lastIndex()).toBe(0);
      expect(storage.term(0)).toBe(0);
      expect(storage.term(1)).toBe('unavailable');
      expect(storage.entries(1, 1, INF)).toEqual([]);
      expect(storage.entries(1, 2, INF)).toBe('unavailable');
      expect(storage.entries(0, 1, INF)).toBe('compacted');
    });

    test('append, then entries, term, firstIndex, lastIndex', async () => {
      const { storage } = await open();
      const ents = makeEntries(1, [1, 1, 2, 2, 3]);
      await storage.append(ents);
      expect(storage.firstIndex()).toBe(1);
      expect(storage.lastIndex()).toBe(5);
      expect([0, 1, 2, 3, 4, 5].map((i) => storage.term(i))).toEqual([0, 1, 1, 2, 2, 3]);
      expect(storage.term(6)).toBe('unavailable');
      expect(storage.entries(1, 6, INF)).toEqual(ents);
      expect(storage.entries(2, 4, INF)).toEqual(ents.slice(1, 3));
      expect(storage.entries(6, 6, INF)).toEqual([]);
      await storage.append(makeEntries(6, [3, 3]));
      expect(storage.lastIndex()).toBe(7);
      expect(storage.entries(5, 8, INF)).toEqual([ents[4], ...makeEntries(6, [3, 3])]);
    });

    test('append of nothing changes nothing', async () => {
      const { storage } = await withLog([1, 1, 2]);
      await storage.append([]);
      expect(storage.lastIndex()).toBe(3);
      expect(storage.entries(1, 4, INF)).toEqual(makeEntries(1, [1, 1, 2]));
    });

    test('entries returns at least one entry and respects maxBytes', async () => {
      const { storage } = await open();
      const ents = makeEntries(1, [1, 1, 1, 1, 1], 7, 100); // entryBytes = 124 each
      await storage.append(ents);
      expect(storage.entries(1, 6, 0)).toEqual(ents.slice(0, 1));
      expect(storage.entries(1, 6, 1)).toEqual(ents.slice(0, 1));
      expect(storage.entries(1, 6, 124 * 3)).toEqual(ents.slice(0, 3));
      expect(storage.entries(1, 6, 124 * 3 - 1)).toEqual(ents.slice(0, 2));
      expect(storage.entries(2, 4, INF)).toEqual(ents.slice(1, 3));
      expect(storage.entries(2, 6, 124 * 10)).toEqual(ents.slice(1));
    });

    test("'compacted' at or below the snapshot index, 'unavailable' beyond lastIndex+1", async () => {
      const { storage } = await withLog([1, 1, 2, 2, 3]);
      await storage.compact(3, conf1, new Uint8Array(0));
      expect(storage.entries(3, 5, INF)).toBe('compacted');
      expect(storage.entries(1, 5, INF)).toBe('compacted');
      expect(storage.entries(4, 7, INF)).toBe('unavailable');
      expect(storage.entries(4, 6, INF)).toEqual(makeEntries(4, [2, 3]));
      expect(storage.entries(6, 6, INF)).toEqual([]);
      expect(storage.term(2)).toBe('compacted');
      expect(storage.term(3)).toBe(2); // the snapshot term
      expect(storage.term(6)).toBe('unavailable');
    });

    test('append overwrites a conflicting tail', async () => {
      const { storage } = await withLog([1, 1, 2, 2, 3]);
      const replacement = makeEntries(3, [4, 4], 9);
      await storage.append(replacement);
      expect(storage.lastIndex()).toBe(4);
      expect(storage.term(5)).toBe('unavailable');
      expect(storage.entries(1, 5, INF)).toEqual([...makeEntries(1, [1, 1]), ...replacement]);
      // Overwriting in the middle with a longer run extends the log.
      const longer = makeEntries(2, [5, 5, 5, 5, 5], 8);
      await storage.append(longer);
      expect(storage.lastIndex()).toBe(6);
      expect(storage.entries(1, 7, INF)).toEqual([...makeEntries(1, [1]), ...longer]);
    });

    test('append that leaves a gap is refused and changes nothing', async () => {
      const { storage } = await withLog([1, 1, 2]);
      await expect(Promise.resolve().then(() => storage.append(makeEntries(5, [2])))).rejects.toThrow(
        /missing log entries/,
      );
      expect(storage.lastIndex()).toBe(3);
      expect(storage.entries(1, 4, INF)).toEqual(makeEntries(1, [1, 1, 2]));
    });

    test('append overlapping compacted entries keeps only the fresh part', async () => {
      const { storage } = await withLog([1, 1, 2, 2, 3]);
      await storage.compact(3, conf1, new Uint8Array(0));
      // 2..3 are compacted, 4..5 are replaced, 6 is new.
      const ents = makeEntries(2, [1, 2, 4, 4, 4], 5);
      await storage.append(ents);
      expect(storage.firstIndex()).toBe(4);
      expect(storage.lastIndex()).toBe(6);
      expect(storage.term(3)).toBe(2);
      expect(storage.entries(4, 7, INF)).toEqual(ents.slice(2));
      // Entirely compacted: a no-op, the log is not truncated.
      await storage.append(makeEntries(1, [1, 1], 6));
      expect(storage.lastIndex()).toBe(6);
      expect(storage.entries(4, 7, INF)).toEqual(ents.slice(2));
    });

    test('compact, then reads, initial state and snapshot', async () => {
      const h = await withLog([1, 1, 2, 2, 3]);
      const { storage } = h;
      await storage.compact(4, conf2, new Uint8Array(0));
      expect(storage.firstIndex()).toBe(5);
      expect(storage.lastIndex()).toBe(5);
      expect(storage.term(4)).toBe(2);
      expect(storage.entries(5, 6, INF)).toEqual(makeEntries(5, [3]));
      expect(storage.initialState().confState).toEqual(conf2);
      const snap = await h.readySnapshot();
      expect(snap.meta).toEqual({ index: 4, term: 2, conf: conf2 });
      // Compacting everything leaves an empty log that still answers the snapshot term.
      await storage.compact(5, conf2, new Uint8Array(0));
      expect(storage.firstIndex()).toBe(6);
      expect(storage.lastIndex()).toBe(5);
      expect(storage.term(5)).toBe(3);
      expect(storage.entries(6, 6, INF)).toEqual([]);
      await storage.append(makeEntries(6, [3]));
      expect(storage.entries(6, 7, INF)).toEqual(makeEntries(6, [3]));
    });

    test('compact never moves the snapshot index backward, nor beyond lastIndex', async () => {
      const h = await withLog([1, 1, 2, 2, 3]);
      const { storage } = h;
      await storage.compact(4, conf1, new Uint8Array(0));
      await storage.compact(2, conf2, new Uint8Array(0));
      await storage.compact(4, conf2, new Uint8Array(0));
      expect(storage.firstIndex()).toBe(5);
      expect(storage.term(4)).toBe(2);
      expect(storage.term(2)).toBe('compacted');
      expect(storage.initialState().confState).toEqual(conf1);
      expect((await h.readySnapshot()).meta.index).toBe(4);
      await expect(Promise.resolve().then(() => storage.compact(6, conf1, new Uint8Array(0)))).rejects.toThrow(
        /beyond last index/,
      );
      expect(storage.firstIndex()).toBe(5);
      expect(storage.lastIndex()).toBe(5);
    });

    test('applySnapshot replaces the log', async () => {
      const h = await withLog([1, 1, 2, 2, 3]);
      const { storage } = h;
      await storage.setHardState({ term: 3, vote: 'n1', commit: 5 });
      const snap = snapshotAt(10, 4, conf2);
      await storage.applySnapshot(snap);
      expect(storage.firstIndex()).toBe(11);
      expect(storage.lastIndex()).toBe(10);
      expect(storage.term(10)).toBe(4);
      expect(storage.term(9)).toBe('compacted');
      expect(storage.term(11)).toBe('unavailable');
      expect(storage.entries(5, 6, INF)).toBe('compacted');
      expect(storage.entries(11, 11, INF)).toEqual([]);
      expect(storage.initialState()).toEqual({ hardState: { term: 3, vote: 'n1', commit: 5 }, confState: conf2 });
      expect((await h.readySnapshot()).meta).toEqual(snap.meta);
      await storage.append(makeEntries(11, [4, 5]));
      expect(storage.entries(11, 13, INF)).toEqual(makeEntries(11, [4, 5]));
    });

    test('applySnapshot below the last index still drops the whole log', async () => {
      const { storage } = await withLog([1, 1, 2, 2, 3]);
      await storage.applySnapshot(snapshotAt(3, 2, conf1));
      expect(storage.firstIndex()).toBe(4);
      expect(storage.lastIndex()).toBe(3);
      expect(storage.term(4)).toBe('unavailable');
    });

    test('applySnapshot refuses a snapshot that is not newer', async () => {
      const { storage } = await withLog([1, 1, 2, 2, 3]);
      await storage.applySnapshot(snapshotAt(10, 4, conf2));
      await storage.append(makeEntries(11, [4]));
      for (const index of [8, 10]) {
        await expect(Promise.resolve().then(() => storage.applySnapshot(snapshotAt(index, 4, conf1)))).rejects.toThrow(
          /not newer/,
        );
      }
      await storage.compact(11, conf2, new Uint8Array(0));
      await expect(Promise.resolve().then(() => storage.applySnapshot(snapshotAt(11, 4, conf1)))).rejects.toThrow(
        /not newer/,
      );
      expect(storage.firstIndex()).toBe(12);
      expect(storage.term(11)).toBe(4);
      expect(storage.initialState().confState).toEqual(conf2);
    });

    test('hard state round-trip', async () => {
      const { storage } = await open();
      const hs: HardState = { term: 7, vote: 'n2', commit: 0 };
      await storage.setHardState(hs);
      expect(storage.initialState().hardState).toEqual(hs);
      const next: HardState = { term: 8, vote: null, commit: 0 };
      await storage.setHardState(next);
      expect(storage.initialState().hardState).toEqual(next);
    });
  });
}
