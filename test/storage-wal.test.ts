/**
 * The WAL under NodeStorage: torn last writes, damage, conflicting tails and compaction
 * across segments, crashes during a snapshot install (simulated by leaving the files as
 * each step leaves them), the state machine against the log at open, and fsync counting.
 */
import * as fs from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { RawNode, SeededRandom } from '../raft/index.js';
import type { ConfState, Entry, HardState } from '../raft/messages.js';
import { MemoryStorage } from '../raft/storage.js';
import {
  encodeApplied,
  encodeConfState,
  locateWalEntry,
  type NodeDatabase,
  NodeStorage,
  SM_APPLIED_KEY_BYTES,
  SM_CONF_KEY_BYTES,
  SnapshotWriter,
  walDir,
} from '../src/storage/index.js';
import { encodeFrame, entryItem } from '../src/storage/wal/format.js';
import { storageError, tempDirs, withStorage } from './helpers/storage.js';
import { makeEntries } from './storage-contract.js';

const INF = Number.MAX_SAFE_INTEGER;
const conf: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };
const empty = new Uint8Array(0);
/** Small enough that a few entries fill a segment. */
const SMALL = 400;

const tempDir = tempDirs('rollcall-wal-');

async function segments(dir: string): Promise<string[]> {
  return (await readdir(walDir(dir))).filter((n) => n.endsWith('.wal')).sort();
}

async function lastSegmentPath(dir: string): Promise<string> {
  return join(walDir(dir), (await segments(dir)).at(-1)!);
}

/** Everything a reader of the storage sees. */
function view(s: NodeStorage) {
  return {
    first: s.firstIndex(),
    last: s.lastIndex(),
    entries: s.entries(s.firstIndex(), s.lastIndex() + 1, INF),
    initial: s.initialState(),
    snapshot: s.snapshotMeta(),
  };
}

/** What the registry does: state and its applied position in one LevelDB batch. */
async function writeStateMachine(
  db: NodeDatabase,
  applied: { index: number; term: number },
  c: ConfState = conf,
): Promise<void> {
  await db.db
    .batch()
    .put(new TextEncoder().encode('prod/orders/a'), new Uint8Array([1, 2, 3]), { sublevel: db.sm })
    .put(SM_APPLIED_KEY_BYTES, encodeApplied(applied), { sublevel: db.sm })
    .put(SM_CONF_KEY_BYTES, encodeConfState(c), { sublevel: db.sm })
    .write({ sync: true });
}

describe('WAL: torn last writes', () => {
  test('a frame cut short at the end of the last segment is dropped at open, and appends continue after it', async () => {
    const dir = await tempDir();
    const ents = makeEntries(1, [1, 1, 2], 3, 40);
    await withStorage(dir, async (s) => {
      await s.append(ents);
      await s.setHardState({ term: 2, vote: 'n1', commit: 2 });
    });
    const path = await lastSegmentPath(dir);
    const intact = (await stat(path)).size;
    const frame = encodeFrame([entryItem(makeEntries(4, [2], 0, 300)[0]!)]);
    await writeFile(path, Buffer.concat([await readFile(path), frame.subarray(0, 150)]));
    const recovered: string[] = [];
    await withStorage(
      dir,
      async (s) => {
        expect(s.lastIndex()).toBe(3);
        expect(s.entries(1, 4, INF)).toEqual(ents);
        expect(s.initialState().hardState).toEqual({ term: 2, vote: 'n1', commit: 2 });
        expect((await stat(path)).size).toBe(intact);
        await s.append(makeEntries(4, [2]));
      },
      { onRecovery: (what) => recovered.push(what) },
    );
    expect(recovered).toEqual([expect.stringMatching(/torn last write of 150 bytes/)]);
    await withStorage(dir, async (s) => expect(s.entries(1, 5, INF)).toEqual([...ents, ...makeEntries(4, [2])]));
  });

  test('a zero-filled tail (file size extended, blocks never written) is dropped', async () => {
    const dir = await tempDir();
    await withStorage(dir, (s) => s.append(makeEntries(1, [1, 1])));
    const path = await lastSegmentPath(dir);
    await writeFile(path, Buffer.concat([await readFile(path), Buffer.alloc(4096)]));
    await withStorage(dir, async (s) => expect(s.lastIndex()).toBe(2));
  });

  test('a last frame with a sector of zeros inside (written out of order) is dropped', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1], 0, 10));
      await s.append(makeEntries(2, [1, 1, 1], 9, 1000)); // ~3 KB: spans several sectors
    });
    const path = await lastSegmentPath(dir);
    const data = await readFile(path);
    const at = await locateWalEntry(dir, 3);
    const sector = Math.ceil(at!.offset / 512) * 512;
    data.fill(0, sector, sector + 512);
    await writeFile(path, data);
    await withStorage(dir, async (s) => {
      expect(s.lastIndex()).toBe(1);
      await s.append(makeEntries(2, [1]));
    });
  });

  test('a flipped bit in the last frame is refused, not dropped: that frame was acknowledged', async () => {
    const dir = await tempDir();
    await withStorage(dir, (s) => s.append(makeEntries(1, [1, 1, 1], 5, 30)));
    const at = (await locateWalEntry(dir, 2))!;
    expect(at.inLastFrame).toBe(true);
    await flipByte(at.path, at.offset + at.length - 1, 0x04);
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('CORRUPT_ENTRY');
    expect(err.index).toBe(2);
  });
});

describe('WAL: damage before the end', () => {
  test('a damaged entry in an older segment names its index', async () => {
    const dir = await tempDir();
    await withStorage(
      dir,
      async (s) => {
        for (let i = 1; i <= 12; i++) await s.append(makeEntries(i, [1], 1, 100));
        expect(s.walSegments().length).toBeGreaterThan(3);
      },
      { segmentBytes: SMALL },
    );
    const at = (await locateWalEntry(dir, 4))!;
    expect(at.path).not.toBe(await lastSegmentPath(dir));
    await flipByte(at.path, at.offset + 20, 0x80);
    const err = await storageError(NodeStorage.open(dir, { segmentBytes: SMALL }));
    expect(err.code).toBe('CORRUPT_ENTRY');
    expect(err.index).toBe(4);
    expect(err.message).toMatch(/log entry 4 is damaged/);
  });

  test('a damaged frame header in the middle names the entry after the last one read', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1], 1, 10));
      await s.append(makeEntries(3, [1, 1], 1, 10));
      await s.setHardState({ term: 1, vote: null, commit: 4 });
    });
    const at = (await locateWalEntry(dir, 3))!;
    // The frame holding entries 3 and 4 starts 12 (frame header) + 5 (item header) bytes before entry 3.
    await flipByte(at.path, at.offset - 17 + 1, 0x01);
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('CORRUPT_ENTRY');
    expect(err.index).toBe(3);
  });
});

describe('WAL: segments', () => {
  test('a conflicting tail is replaced across segments, and stays replaced after reopen', async () => {
    const dir = await tempDir();
    const options = { segmentBytes: SMALL };
    await withStorage(
      dir,
      async (s) => {
        for (let i = 1; i <= 10; i++) await s.append(makeEntries(i, [1], 1, 100));
        const before = s.walSegments().length;
        // Replaces 5..10, whose entries sit in several older segments.
        await s.append(makeEntries(5, [2, 2], 2, 100));
        expect(s.walSegments().length).toBeGreaterThanOrEqual(before);
        expect(s.lastIndex()).toBe(6);
      },
      options,
    );
    const expected = [...makeEntries(1, [1, 1, 1, 1], 1, 100), ...makeEntries(5, [2, 2], 2, 100)];
    await withStorage(
      dir,
      async (s) => {
        expect(s.lastIndex()).toBe(6);
        expect(s.entries(1, 7, INF)).toEqual(expected);
        await s.append(makeEntries(7, [2], 2, 100));
      },
      options,
    );
    await withStorage(
      dir,
      async (s) => expect(s.entries(1, 8, INF)).toEqual([...expected, ...makeEntries(7, [2], 2, 100)]),
      options,
    );
  });

  test('compaction deletes the segments entirely below the compaction index; restart after it', async () => {
    const dir = await tempDir();
    const options = { segmentBytes: SMALL };
    const ents = makeEntries(
      1,
      Array.from({ length: 30 }, () => 1),
      1,
      100,
    );
    await withStorage(
      dir,
      async (s) => {
        for (const e of ents) await s.append([e]);
        await s.setHardState({ term: 1, vote: 'n2', commit: 30 });
        const before = s.walSegments();
        await s.compact(20, conf, empty);
        const after = s.walSegments();
        expect(after.length).toBeLessThan(before.length);
        expect(s.stats().segmentsDeleted).toBe(before.length - after.length);
        // Every segment left may still hold entries after 20 (its successor starts beyond 21).
        const starts = after.map((n) => Number.parseInt(n.slice(17, 33), 16));
        expect(starts[1]! - 1).toBeGreaterThan(20);
        expect(await segments(dir)).toEqual(after);
      },
      options,
    );
    await withStorage(
      dir,
      async (s) => {
        expect(s.snapshotMeta()).toEqual({ index: 20, term: 1, conf });
        expect(s.firstIndex()).toBe(21);
        expect(s.entries(21, 31, INF)).toEqual(ents.slice(20));
        expect(s.initialState().hardState).toEqual({ term: 1, vote: 'n2', commit: 30 });
        await s.compact(30, conf, empty);
        expect(s.walSegments()).toHaveLength(1);
        await s.append(makeEntries(31, [2]));
      },
      options,
    );
    await withStorage(
      dir,
      async (s) => {
        expect(s.firstIndex()).toBe(31);
        expect(s.entries(31, 32, INF)).toEqual(makeEntries(31, [2]));
        expect(s.initialState().hardState).toEqual({ term: 1, vote: 'n2', commit: 30 });
      },
      options,
    );
  });

  test('segments a crash kept from being deleted are superseded, and deleted at the next open', async () => {
    const dir = await tempDir();
    const options = { segmentBytes: SMALL };
    const saved = join(await tempDir(), 'saved');
    await fs.promises.mkdir(saved);
    let expected: ReturnType<typeof view> | undefined;
    await withStorage(
      dir,
      async (s) => {
        for (let i = 1; i <= 20; i++) await s.append(makeEntries(i, [1], 1, 100));
        for (const n of s.walSegments()) await copyFile(join(walDir(dir), n), join(saved, n));
        await s.compact(15, conf, empty);
        expected = view(s);
      },
      options,
    );
    // Put the deleted ones back, as if the unlinks never reached the disk.
    for (const n of await readdir(saved))
      if (!(await segments(dir)).includes(n)) await copyFile(join(saved, n), join(walDir(dir), n));
    await withStorage(
      dir,
      async (s) => {
        expect(view(s)).toEqual(expected);
        expect(s.walSegments()).toEqual(await segments(dir));
      },
      options,
    );
  });
});

describe('WAL: a snapshot install interrupted by a crash', () => {
  /** A follower with a stale log: entries 1..12 with entries 9..12 of an old term. */
  async function follower(dir: string): Promise<void> {
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2], 1, 20));
      await s.setHardState({ term: 2, vote: 'n1', commit: 6 });
      await writeStateMachine(s.database, { index: 6, term: 1 });
    });
  }
  const installed = { index: 10, term: 3 };

  test('crash before (1), the state machine: nothing changed', async () => {
    const dir = await tempDir();
    await follower(dir);
    await withStorage(dir, async (s) => {
      expect(s.lastIndex()).toBe(12);
      expect(s.snapshotMeta().index).toBe(0);
    });
  });

  test('crash after (1), before (2) the WAL: open finishes the install from the state machine', async () => {
    const dir = await tempDir();
    await follower(dir);
    await withStorage(dir, (s) => writeStateMachine(s.database, installed));
    const recovered: string[] = [];
    const after = await withStorage(
      dir,
      async (s) => {
        expect(s.snapshotMeta()).toEqual({ ...installed, conf });
        expect(s.firstIndex()).toBe(11);
        expect(s.lastIndex()).toBe(10);
        expect(s.term(10)).toBe(3);
        // The term change of the install's Ready was lost with it: taken up, without a vote.
        expect(s.initialState().hardState).toEqual({ term: 3, vote: null, commit: 10 });
        expect(s.walSegments()).toHaveLength(1);
        return view(s);
      },
      { onRecovery: (what) => recovered.push(what) },
    );
    expect(recovered).toEqual([expect.stringMatching(/finished installing the snapshot at index 10/)]);
    await withStorage(dir, async (s) => expect(view(s)).toEqual(after));
  });

  test('crash during (2), its new segment created but not written: the same', async () => {
    const dir = await tempDir();
    await follower(dir);
    await withStorage(dir, (s) => writeStateMachine(s.database, installed));
    const last = (await segments(dir)).at(-1)!;
    const seq = Number.parseInt(last.slice(0, 16), 16) + 1;
    const torn = `${seq.toString(16).padStart(16, '0')}-${(11).toString(16).padStart(16, '0')}.wal`;
    await writeFile(join(walDir(dir), torn), Buffer.alloc(700));
    await withStorage(dir, async (s) => {
      expect(s.snapshotMeta()).toEqual({ ...installed, conf });
      expect(s.lastIndex()).toBe(10);
    });
  });

  test('crash after (2), before (3) deleting old segments: the new segment supersedes them', async () => {
    const dir = await tempDir();
    await follower(dir);
    const saved = await segments(dir);
    const copies = await tempDir();
    for (const n of saved) await copyFile(join(walDir(dir), n), join(copies, n));
    // The leader's snapshot, made from a state machine applied to 10 in term 3.
    const w = new SnapshotWriter();
    w.add(SM_APPLIED_KEY_BYTES, encodeApplied(installed));
    w.add(SM_CONF_KEY_BYTES, encodeConfState(conf));
    const snapshot = { meta: { ...installed, conf }, data: w.finish() };
    const after = await withStorage(dir, async (s) => {
      await s.persist({ snapshot, entries: makeEntries(11, [3]), hardState: { term: 3, vote: null, commit: 10 } });
      return view(s);
    });
    for (const n of saved) await copyFile(join(copies, n), join(walDir(dir), n));
    await withStorage(dir, async (s) => {
      expect(view(s)).toEqual(after);
      expect(s.lastIndex()).toBe(11);
      expect(s.walSegments()).toHaveLength(1);
    });
  });

  test('a state machine without its WAL is refused: the term and vote are gone', async () => {
    const dir = await tempDir();
    await follower(dir);
    await rm(walDir(dir), { recursive: true });
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('CORRUPT_STATE');
    expect(err.message).toMatch(/WAL .* is missing/);
  });

  test('a state machine behind the compaction point is refused', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1, 1]));
      await writeStateMachine(s.database, { index: 4, term: 1 });
      await s.compact(3, conf, empty);
      await writeStateMachine(s.database, { index: 2, term: 1 }); // lost writes
    });
    expect((await storageError(NodeStorage.open(dir))).code).toBe('INVALID_STATE_MACHINE');
  });
});

describe('WAL: the state machine ahead of the durable commit index', () => {
  test('open keeps the log; raft takes commit = applied, bounded by the last index', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1, 1, 1]));
      await s.setHardState({ term: 1, vote: 'n1', commit: 2 });
      // Later commit-only hard states were written unsynced and lost; the registry applied 4.
      await writeStateMachine(s.database, { index: 4, term: 1 });
    });
    await withStorage(dir, async (s) => {
      expect(s.lastIndex()).toBe(5);
      expect(s.initialState().hardState.commit).toBe(2);
      const raw = new RawNode({
        id: 'n1',
        storage: s,
        electionTick: 10,
        heartbeatTick: 1,
        random: new SeededRandom(1),
        applied: 4,
      });
      expect(raw.status().hardState.commit).toBe(4);
      expect(raw.status().applied).toBe(4);
    });
  });
});

describe('WAL: fsyncs', () => {
  test('sync:false writes a frame without an fsync; entries are always synced', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1]));
      let before = s.stats();
      await s.persist({ entries: [], hardState: { term: 1, vote: null, commit: 2 }, sync: false });
      expect(s.stats().batches - before.batches).toBe(1);
      expect(s.stats().syncs - before.syncs).toBe(0);
      before = s.stats();
      await s.persist({ entries: makeEntries(3, [1]), sync: false });
      expect(s.stats().syncs - before.syncs).toBe(1);
      before = s.stats();
      await s.persist({ entries: makeEntries(4, [1]), hardState: { term: 1, vote: null, commit: 3 } });
      expect(s.stats().syncs - before.syncs).toBe(1);
      expect(s.stats().batches - before.batches).toBe(1);
    });
    await withStorage(dir, async (s) => {
      expect(s.lastIndex()).toBe(4);
      expect(s.initialState().hardState.commit).toBe(3);
    });
  });

  test('compaction syncs the state machine first, and the WAL only when it deletes segments', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1]));
      const before = s.stats();
      await s.compact(2, conf, empty);
      expect(s.stats().syncs - before.syncs).toBe(1); // the LevelDB sync; no segment to delete
    });
  });

  test('a failed WAL write fails the storage', async () => {
    const dir = await tempDir();
    const s = await NodeStorage.open(dir);
    await s.append(makeEntries(1, [1]));
    fs.closeSync((s as unknown as { wal: { fd: number } }).wal.fd); // the disk goes away under the WAL
    expect((await storageError(s.append(makeEntries(2, [1])))).code).toBe('IO');
    expect(s.lastIndex()).toBe(1);
    expect((await storageError(s.setHardState({ term: 1, vote: null, commit: 1 }))).code).toBe('FAILED');
    await s.close().catch(() => undefined);
  });
});

// ---- model test with tiny segments: rollovers, releases and truncations across files ----

type Op =
  | { kind: 'append'; offset: number; terms: number[] }
  | { kind: 'compact'; offset: number }
  | { kind: 'hardState'; commit: number; sync: boolean }
  | { kind: 'reopen' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      offset: fc.integer({ min: -5, max: 0 }),
      terms: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('compact' as const), offset: fc.integer({ min: 0, max: 5 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('hardState' as const), commit: fc.nat(40), sync: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

describe('WAL model test', () => {
  test('with 300-byte segments, reads match MemoryStorage across reopens', async () => {
    let rolled = 0;
    let deleted = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = await mkdtemp(join(tmpdir(), 'rollcall-walmodel-'));
        const memory = new MemoryStorage();
        const options = { segmentBytes: 300 };
        let s = await NodeStorage.open(dir, options);
        const same = () => {
          expect(s.firstIndex()).toBe(memory.firstIndex());
          expect(s.lastIndex()).toBe(memory.lastIndex());
          expect(s.entries(s.firstIndex(), s.lastIndex() + 1, INF)).toEqual(
            memory.entries(memory.firstIndex(), memory.lastIndex() + 1, INF),
          );
          expect(s.term(s.firstIndex() - 1)).toBe(memory.term(memory.firstIndex() - 1));
          expect(s.initialState()).toEqual(memory.initialState());
        };
        try {
          for (const op of ops) {
            if (op.kind === 'reopen') {
              deleted += s.stats().segmentsDeleted;
              await s.close();
              s = await NodeStorage.open(dir, options);
            } else if (op.kind === 'append') {
              const ents: Entry[] = makeEntries(
                memory.lastIndex() + 1 + op.offset,
                op.terms,
                op.offset & 0xff,
                40,
              ).filter((e) => e.index > memory.firstIndex() - 1);
              memory.append(ents);
              await s.append(ents);
            } else if (op.kind === 'compact') {
              const to = Math.min(memory.lastIndex(), memory.firstIndex() - 1 + op.offset);
              memory.compact(to, conf, empty);
              await s.compact(to, conf, empty);
            } else {
              const hs: HardState = { term: 4, vote: 'n1', commit: op.commit };
              memory.setHardState(hs);
              await s.persist({ entries: [], hardState: hs, sync: op.sync });
            }
            same();
          }
          rolled += s.walSegments().length > 1 ? 1 : 0;
          deleted += s.stats().segmentsDeleted;
          await s.close();
          s = await NodeStorage.open(dir, options);
          same();
        } finally {
          await s.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { seed: 0x0a1_5eed, numRuns: 40 },
    );
    // The runs did exercise what the small segments are for.
    expect(rolled).toBeGreaterThan(5);
    expect(deleted).toBeGreaterThan(5);
  });
});

async function flipByte(path: string, offset: number, mask: number): Promise<void> {
  const data = await readFile(path);
  data[offset]! ^= mask;
  await writeFile(path, data);
}
