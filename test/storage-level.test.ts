import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { ConfState, Entry, HardState, PiecewiseSnapshot, Snapshot, SnapshotMeta } from '../raft/messages.js';
import { MemoryStorage } from '../raft/storage.js';
import { decode, encode } from '../src/codec/index.js';
import { crc32, crc32Table } from '../src/storage/checksum.js';
import {
  decodeSnapshotData,
  encodeApplied,
  encodeConfState,
  FORMAT_VERSION,
  isNodeLocalSmKey,
  joinPieces,
  locateWalEntry,
  type NodeDatabase,
  NodeStorage,
  openNodeDatabase,
  readFormatVersion,
  replaceOps,
  SM_APPLIED_KEY_BYTES,
  SM_CONF_KEY_BYTES,
  SM_LEGACY_PEERS_KEY,
  type SmOp,
  SnapshotWriter,
  StorageError,
  snapshotBytes,
  walDir,
} from '../src/storage/index.js';
import { compareBytes } from '../src/storage/keys.js';
import { encodeEntry, encodeHardState, encodeSnapshotMeta } from '../src/storage/values.js';
import { frameAt, ITEM, splitItems } from '../src/storage/wal/format.js';
import { storageError, tempDirs, withStorage } from './helpers/storage.js';
import { makeEntries, storageContract } from './storage-contract.js';

/** A served snapshot with its data as one array, as a follower's Raft assembles it from the chunks. */
const whole = (s: Snapshot | PiecewiseSnapshot): Snapshot => ({ meta: s.meta, data: snapshotBytes(s) });

const INF = Number.MAX_SAFE_INTEGER;
const conf: ConfState = { voters: ['n1', 'n2', 'n3'], learners: ['n4'] };
const empty = new Uint8Array(0);

const tempDir = tempDirs('rollcall-storage-');

storageContract('NodeStorage', async () => {
  const dir = await tempDir();
  const storage = await NodeStorage.open(dir);
  return {
    storage,
    readySnapshot: () => storage.whenSnapshotReady(),
    dispose: () => storage.close(),
  };
});

async function withDatabase<T>(dir: string, fn: (db: NodeDatabase) => Promise<T>): Promise<T> {
  const db = await openNodeDatabase(dir);
  try {
    return await fn(db);
  } finally {
    await db.db.close();
  }
}

/** A format 1 database, as builds before the WAL wrote it. */
async function writeV1(
  dir: string,
  v1: {
    hs: HardState;
    meta?: SnapshotMeta;
    entries: Entry[];
    applied?: { index: number; term: number };
    override?: [number, Uint8Array];
  },
): Promise<void> {
  const { Level } = await import('level');
  const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  const raft = raw.sublevel<string, Uint8Array>('raft', { valueEncoding: 'view' });
  const log = raw.sublevel<Uint8Array, Uint8Array>('log', { keyEncoding: 'view', valueEncoding: 'view' });
  const sm = raw.sublevel<Uint8Array, Uint8Array>('sm', { keyEncoding: 'view', valueEncoding: 'view' });
  await raft.put('format', encode(1));
  await raft.put('hardstate', encodeHardState(v1.hs));
  if (v1.meta) await raft.put('snapshot', encodeSnapshotMeta(v1.meta));
  for (const e of v1.entries) {
    const key = new Uint8Array(8);
    new DataView(key.buffer).setUint32(4, e.index);
    await log.put(key, v1.override?.[0] === e.index ? v1.override[1] : encodeEntry(e));
  }
  if (v1.applied) {
    await sm.put(SM_APPLIED_KEY_BYTES, encodeApplied(v1.applied));
    await sm.put(SM_CONF_KEY_BYTES, encodeConfState(conf));
  }
  await raw.close();
}

/** The format version stored in a database, read without opening it as a node database. */
async function withDatabaseRaw(dir: string, fn: (format: unknown) => Promise<void>): Promise<void> {
  const { Level } = await import('level');
  const raw = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    const v = await raw.sublevel<string, Uint8Array>('raft', { valueEncoding: 'view' }).get('format');
    await fn(v === undefined ? undefined : decode(v));
  } finally {
    await raw.close();
  }
}

/** Flips bits of one byte of a file in place. */
async function flipByte(path: string, offset: number, mask: number): Promise<void> {
  const data = await readFile(path);
  data[offset]! ^= mask;
  await writeFile(path, data);
}

/** The frames of a segment file: where each ends and the kinds of its items. */
async function walFrames(path: string): Promise<{ start: number; end: number; kinds: number[] }[]> {
  const data = await readFile(path);
  const out: { start: number; end: number; kinds: number[] }[] = [];
  for (let at = 0; at < data.byteLength; ) {
    const f = frameAt(data, at);
    if (!f.ok) throw new Error(`frame at ${at}: ${f.reason}`);
    out.push({ start: at, end: f.end, kinds: splitItems(f.body).items.map((i) => i.kind) });
    at = f.end;
  }
  return out;
}

/** Every [key, value] of the state machine, in order. */
async function smPairs(db: NodeDatabase): Promise<[Uint8Array, Uint8Array][]> {
  return (await db.sm.iterator().all()).map(([k, v]) => [new Uint8Array(k), new Uint8Array(v)]);
}

/** A state machine key and value numbered k, in key order by k. */
const numberedKey = (k: number) => new TextEncoder().encode(`i/prod/svc/k${String(k).padStart(5, '0')}`);
const numberedValue = (k: number, version: string) => new TextEncoder().encode(`${k}:${version}`);

/** Writes replaceOps' result into the sublevel in one batch, as an install does. */
async function applyOps(db: NodeDatabase, ops: readonly SmOp[]): Promise<void> {
  const batch = db.db.batch();
  for (const o of ops) {
    if (o.type === 'put') batch.put(o.key, o.value, { sublevel: db.sm });
    else batch.del(o.key, { sublevel: db.sm });
  }
  await batch.write();
}

/** What the registry does: write state and its applied position in one batch. */
async function writeStateMachine(
  db: NodeDatabase,
  pairs: readonly (readonly [string, Uint8Array])[],
  applied?: { index: number; term: number },
): Promise<void> {
  const batch = db.db.batch();
  for (const [k, v] of pairs) batch.put(new TextEncoder().encode(k), v, { sublevel: db.sm });
  if (applied !== undefined) {
    batch.put(SM_APPLIED_KEY_BYTES, encodeApplied(applied), { sublevel: db.sm });
    batch.put(SM_CONF_KEY_BYTES, encodeConfState(conf), { sublevel: db.sm });
  }
  await batch.write({ sync: true });
}

const servicePairs = (n: number, tag: string): [string, Uint8Array][] =>
  Array.from({ length: n }, (_, i) => [`prod/orders/${tag}-${String(i).padStart(5, '0')}`, randomBytes(100)]);

describe('NodeStorage: durability', () => {
  test('compaction leaves every earlier state machine batch in synced tables, not only in LevelDB logs', async () => {
    // LevelDB closes an old log file without an fsync when it switches memtables, so a
    // synced write alone does not make earlier unsynced batches durable (power loss).
    // After compact() the current LevelDB log must hold none of them: they are in tables.
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1, 1], 4, 50));
      const batch = s.database.db.batch();
      for (const [k, v] of servicePairs(2000, 'unsynced'))
        batch.put(new TextEncoder().encode(k), v, { sublevel: s.database.sm });
      await batch.write(); // unsynced, as the registry writes
      const logBytes = async () => {
        let total = 0;
        for (const f of await readdir(dir)) if (f.endsWith('.log')) total += (await readFile(join(dir, f))).length;
        return total;
      };
      expect(await logBytes()).toBeGreaterThan(2000 * 100);
      await s.compact(3, conf, empty);
      expect(await logBytes()).toBeLessThan(1000);
      const tables = (await readdir(dir)).filter((f) => f.endsWith('.ldb'));
      expect(tables.length).toBeGreaterThan(0);
    });
  });

  test('a snapshot install leaves its records in synced tables, not only in the LevelDB log', async () => {
    // As for compaction: the WAL that drops the old log is written only once the state
    // machine's batches are in tables. After applySnapshot the current LevelDB log holds none of it.
    const dirA = await tempDir();
    const dirB = await tempDir();
    const snap = await withStorage(dirA, async (a) => {
      await a.append(makeEntries(1, [1, 1, 1]));
      await writeStateMachine(a.database, servicePairs(2000, 's'), { index: 3, term: 1 });
      await a.compact(3, conf, empty);
      return whole(await a.whenSnapshotReady());
    });
    await withStorage(dirB, async (b) => {
      await b.append(makeEntries(1, [1]));
      await b.applySnapshot(snap);
      let logBytes = 0;
      for (const f of await readdir(dirB)) if (f.endsWith('.log')) logBytes += (await readFile(join(dirB, f))).length;
      expect(logBytes).toBeLessThan(1000);
      expect(snap.data.byteLength).toBeGreaterThan(2000 * 100);
      expect((await readdir(dirB)).filter((f) => f.endsWith('.ldb')).length).toBeGreaterThan(0);
    });
  });

  test('reopen after close keeps hard state, log and snapshot meta', async () => {
    const dir = await tempDir();
    const ents = makeEntries(1, [1, 1, 2, 2, 3, 3, 3], 4, 50);
    const hs: HardState = { term: 3, vote: 'n2', commit: 6 };
    await withStorage(dir, async (s) => {
      await s.append(ents);
      await s.setHardState(hs);
      await s.compact(3, conf, empty);
    });
    await withStorage(dir, async (s) => {
      expect(s.initialState()).toEqual({ hardState: hs, confState: conf });
      expect(s.snapshotMeta()).toEqual({ index: 3, term: 2, conf });
      expect(s.firstIndex()).toBe(4);
      expect(s.lastIndex()).toBe(7);
      expect(s.term(3)).toBe(2);
      expect(s.term(2)).toBe('compacted');
      expect(s.entries(4, 8, INF)).toEqual(ents.slice(3));
    });
  });

  test('a truncated tail stays truncated after reopen', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1, 1, 1]));
      await s.append(makeEntries(3, [2]));
    });
    await withStorage(dir, async (s) => {
      expect(s.lastIndex()).toBe(3);
      expect(s.entries(1, 4, INF)).toEqual([...makeEntries(1, [1, 1]), ...makeEntries(3, [2])]);
    });
  });

  test('a damaged entry makes open fail with CORRUPT_ENTRY naming the index', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 2, 2, 3], 1, 20));
      await s.setHardState({ term: 3, vote: null, commit: 2 }); // the entries' frame is not the last one
    });
    const at = await locateWalEntry(dir, 3);
    if (at === undefined) throw new Error('entry 3 not found in the WAL');
    expect(at.inLastFrame).toBe(false);
    await flipByte(at.path, at.offset + at.length - 2, 0x01); // one bit, inside the entry's data
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('CORRUPT_ENTRY');
    expect(err.index).toBe(3);
    expect(err.message).toMatch(/log entry 3 is damaged/);
    expect(err.message).toMatch(/checksum mismatch/);
  });

  test('an intact frame that continues the log past a gap is LOG_GAP', async () => {
    const dir = await tempDir();
    await withStorage(dir, (s) => s.append(makeEntries(1, [1, 1, 1, 1])));
    // Entry 7 written straight into the WAL after 4: 5 and 6 are missing.
    const { entryItem, encodeFrame } = await import('../src/storage/wal/format.js');
    const [segment] = await readdir(walDir(dir));
    const path = join(walDir(dir), segment!);
    await writeFile(path, Buffer.concat([await readFile(path), encodeFrame([entryItem(makeEntries(7, [1])[0]!)])]));
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('LOG_GAP');
    expect(err.index).toBe(5);
  });

  test('a missing segment in the middle makes open fail with LOG_GAP', async () => {
    const dir = await tempDir();
    const s = await NodeStorage.open(dir, { segmentBytes: 100 });
    for (let i = 1; i <= 6; i++) await s.append(makeEntries(i, [1], 0, 60));
    const segments = s.walSegments();
    await s.close();
    expect(segments.length).toBeGreaterThan(3);
    const { rm: remove } = await import('node:fs/promises');
    await remove(join(walDir(dir), segments[2]!));
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('LOG_GAP');
    expect(err.message).toMatch(/segment 2 is missing/);
  });

  test('damaged hard state is CORRUPT_STATE', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1]));
      await s.setHardState({ term: 2, vote: 'n1', commit: 0 });
      await s.append(makeEntries(2, [2]));
    });
    const [segment] = await readdir(walDir(dir));
    const path = join(walDir(dir), segment!);
    const frames = await walFrames(path);
    const hsFrame = frames.find((f) => f.kinds.length === 1 && f.kinds[0] === ITEM.hardState)!;
    await flipByte(path, hsFrame.end - 1, 0xff);
    expect((await storageError(NodeStorage.open(dir))).code).toBe('CORRUPT_STATE');
  });

  test('a newer format version is refused, naming the directory, both versions and what to do', async () => {
    const dir = await tempDir();
    await withStorage(dir, (s) => s.append(makeEntries(1, [1])));
    await withDatabase(dir, (db) =>
      db.db
        .batch()
        .put('format', encode(FORMAT_VERSION + 1), { sublevel: db.raft })
        .write({ sync: true }),
    );
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('FORMAT_TOO_NEW');
    expect(err.message).toContain(
      `${dir} is in storage format ${FORMAT_VERSION + 1}, written by a newer Rollcall build; this build reads storage formats up to ${FORMAT_VERSION}`,
    );
    expect(err.message).toMatch(/Start this member with a build that reads format/);
    // The failed open closed the database again: a second try is refused the same way, not
    // LOCKED, and nothing was written.
    expect((await storageError(openNodeDatabase(dir))).code).toBe('FORMAT_TOO_NEW');
    expect(await readFormatVersion(dir)).toBe(FORMAT_VERSION + 1);
  });

  test('a format version no build writes is UNKNOWN_FORMAT', async () => {
    for (const bad of [0, 2.5, 'two']) {
      const dir = await tempDir();
      await withStorage(dir, (s) => s.append(makeEntries(1, [1])));
      await withDatabase(dir, (db) =>
        db.db.batch().put('format', encode(bad), { sublevel: db.raft }).write({ sync: true }),
      );
      const err = await storageError(NodeStorage.open(dir));
      expect(err.code, String(bad)).toBe('UNKNOWN_FORMAT');
      expect(err.message).toContain(`storage format ${JSON.stringify(bad)}, which no Rollcall build writes`);
    }
  });

  test('readFormatVersion reads the version without creating anything', async () => {
    const dir = await tempDir();
    expect(await readFormatVersion(join(dir, 'absent'))).toBeNull();
    expect(await readdir(dir)).toEqual([]);
    await withStorage(dir, (s) => s.append(makeEntries(1, [1])));
    expect(await readFormatVersion(dir)).toBe(FORMAT_VERSION);
  });

  test('a format 1 database (the log inside LevelDB) is migrated into a WAL', async () => {
    const dir = await tempDir();
    const hs: HardState = { term: 2, vote: 'n2', commit: 6 };
    const ents = makeEntries(3, [1, 1, 2, 2, 2, 2], 6, 30); // 3 is at the compaction point: stale
    await writeV1(dir, { hs, meta: { index: 3, term: 1, conf }, entries: ents, applied: { index: 6, term: 2 } });
    const recovered: string[] = [];
    await withStorage(
      dir,
      async (s) => {
        expect(s.snapshotMeta()).toEqual({ index: 3, term: 1, conf });
        expect(s.initialState()).toEqual({ hardState: hs, confState: conf });
        expect(s.firstIndex()).toBe(4);
        expect(s.entries(4, 9, INF)).toEqual(ents.slice(1));
        expect(s.walSegments()).toHaveLength(1);
        // LevelDB keeps the state machine and the new format; the format 1 keys are gone.
        expect((await smPairs(s.database)).length).toBe(2);
        expect(await s.database.raft.keys().all()).toEqual(['format']);
        expect(
          await s.database.db
            .keys({ gte: new TextEncoder().encode('!log!'), lt: new TextEncoder().encode('!log"') })
            .all(),
        ).toEqual([]);
        await s.append(makeEntries(9, [2]));
      },
      { onRecovery: (what) => recovered.push(what) },
    );
    await withStorage(
      dir,
      async (s) => expect(s.entries(4, 10, INF)).toEqual([...ents.slice(1), ...makeEntries(9, [2])]),
      { onRecovery: (what) => recovered.push(what) },
    );
    // Said once, for the start log; not again on the next open.
    expect(recovered).toEqual([`migrated ${dir} from storage format 1 to 2 (docs/storage.md, "Format version")`]);
  });

  test('a format 1 migration interrupted before the format switch starts over', async () => {
    const dir = await tempDir();
    await writeV1(dir, { hs: { term: 1, vote: null, commit: 2 }, entries: makeEntries(1, [1, 1]) });
    const { mkdir } = await import('node:fs/promises');
    await mkdir(walDir(dir));
    await writeFile(join(walDir(dir), '0000000000000000-0000000000000001.wal'), Buffer.from('half a WAL'));
    await withStorage(dir, async (s) => expect(s.entries(1, 3, INF)).toEqual(makeEntries(1, [1, 1])));
  });

  test('a damaged format 1 log is refused before anything is migrated', async () => {
    const dir = await tempDir();
    const ents = makeEntries(1, [1, 1, 1]);
    const damaged = encodeEntry(ents[1]!);
    damaged[damaged.length - 1]! ^= 0x01;
    await writeV1(dir, { hs: { term: 1, vote: null, commit: 0 }, entries: ents, override: [2, damaged] });
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('CORRUPT_ENTRY');
    expect(err.index).toBe(2);
    await withDatabaseRaw(dir, async (format) => expect(format).toBe(1));
  });

  test('a WAL without its database is refused', async () => {
    const dir = await tempDir();
    await withStorage(dir, (s) => s.append(makeEntries(1, [1])));
    const { rm: remove } = await import('node:fs/promises');
    for (const name of await readdir(dir)) if (name !== 'wal') await remove(join(dir, name), { recursive: true });
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('UNKNOWN_FORMAT');
    expect(err.message).toMatch(/no LevelDB state next to it/);
  });

  test('a non-empty database without a format version is refused', async () => {
    const dir = await tempDir();
    const { Level } = await import('level');
    const raw = new Level<string, string>(dir);
    await raw.put('something', 'else');
    await raw.close();
    const err = await storageError(NodeStorage.open(dir));
    expect(err.code).toBe('UNKNOWN_FORMAT');
  });

  test('a database open elsewhere is LOCKED', async () => {
    const dir = await tempDir();
    await withStorage(dir, async () => {
      const err = await storageError(NodeStorage.open(dir));
      expect(err.code).toBe('LOCKED');
    });
  });
});

describe('NodeStorage: writes', () => {
  test('persist() of many entries and a hard state is one batch with one fsync', async () => {
    const dir = await tempDir();
    const ents = makeEntries(
      1,
      Array.from({ length: 64 }, () => 1),
      2,
      200,
    );
    const hs: HardState = { term: 1, vote: 'n1', commit: 0 };
    await withStorage(dir, async (s) => {
      const before = s.stats();
      await s.persist({ hardState: hs, entries: ents });
      const after = s.stats();
      expect(after.batches - before.batches).toBe(1);
      expect(after.syncs - before.syncs).toBe(1);
      expect(after.entriesWritten - before.entriesWritten).toBe(64);
      await s.persist({ entries: [] }); // nothing to do: no write, no fsync
      expect(s.stats()).toEqual(after);
    });
    await withStorage(dir, async (s) => {
      expect(s.initialState().hardState).toEqual(hs);
      expect(s.entries(1, 65, INF)).toEqual(ents);
    });
  });

  test('persist() with a snapshot, entries and hard state is one LevelDB batch, then one WAL frame in a new segment', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1]));
      const before = s.stats();
      const snap: Snapshot = { meta: { index: 20, term: 4, conf }, data: empty };
      await s.persist({
        snapshot: snap,
        entries: makeEntries(19, [4, 4, 5, 5]),
        hardState: { term: 5, vote: null, commit: 21 },
      });
      // The state machine batch, the frame, the new segment's directory entry, and the directory after the old segment is deleted.
      expect(s.stats().syncs - before.syncs).toBe(4);
      expect(s.stats().batches - before.batches).toBe(2);
      expect(s.walSegments()).toHaveLength(1);
      expect(s.stats().segmentsDeleted - before.segmentsDeleted).toBe(1);
      expect(s.firstIndex()).toBe(21);
      expect(s.lastIndex()).toBe(22);
      expect(s.entries(21, 23, INF)).toEqual(makeEntries(21, [5, 5]));
    });
    await withStorage(dir, async (s) => {
      expect(s.firstIndex()).toBe(21);
      expect(s.lastIndex()).toBe(22);
      expect(s.term(20)).toBe(4);
      expect(s.initialState()).toEqual({ hardState: { term: 5, vote: null, commit: 21 }, confState: conf });
    });
  });

  test('writes issued without waiting apply in call order', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await Promise.all([
        s.append(makeEntries(1, [1, 1, 1, 1])),
        s.append(makeEntries(3, [2])),
        s.compact(2, conf, empty),
        s.setHardState({ term: 2, vote: 'n3', commit: 3 }),
        s.append(makeEntries(4, [2, 2])),
      ]);
      expect(s.firstIndex()).toBe(3);
      expect(s.lastIndex()).toBe(5);
      expect([2, 3, 4, 5].map((i) => s.term(i))).toEqual([1, 2, 2, 2]);
    });
  });

  test('typed refusals: gap, compact beyond last index, out-of-date snapshot, closed', async () => {
    const dir = await tempDir();
    const s = await NodeStorage.open(dir);
    await s.append(makeEntries(1, [1, 1]));
    expect((await storageError(s.append(makeEntries(4, [1])))).code).toBe('INVALID_ARGUMENT');
    expect((await storageError(s.compact(3, conf, empty))).code).toBe('INVALID_ARGUMENT');
    await s.applySnapshot({ meta: { index: 5, term: 1, conf }, data: empty });
    const old = await storageError(s.applySnapshot({ meta: { index: 5, term: 1, conf }, data: empty }));
    expect(old.code).toBe('SNAPSHOT_OUT_OF_DATE');
    // A refusal is not a write failure: the storage keeps working.
    await s.append(makeEntries(6, [1]));
    expect(s.lastIndex()).toBe(6);
    await s.close();
    expect((await storageError(s.append(makeEntries(7, [1])))).code).toBe('CLOSED');
  });

  test('after a failed write every later write is refused with FAILED', async () => {
    const dir = await tempDir();
    const s = await NodeStorage.open(dir);
    await s.append(makeEntries(1, [1]));
    await s.database.db.close(); // the disk goes away under the storage
    // Compaction first makes the state machine durable (a synced LevelDB write): it fails.
    expect((await storageError(s.compact(1, conf, empty))).code).toBe('IO');
    expect(s.firstIndex()).toBe(1); // memory still mirrors what was durable
    expect(await storageError(s.setHardState({ term: 1, vote: null, commit: 1 }))).toMatchObject({ code: 'FAILED' });
    await s.close();
  });
});

describe('NodeStorage: snapshots', () => {
  test('an install writes only what differs: puts for new or changed records, deletes for the rest', async () => {
    const seed = 0x5eed_0513;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 40 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 40 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 60 }), { maxLength: 10 }),
        async (oldKeys, newKeys, changed) => {
          const dir = await tempDir();
          const db = await openNodeDatabase(dir);
          try {
            await applyOps(
              db,
              oldKeys.map((k) => ({ type: 'put', key: numberedKey(k), value: numberedValue(k, 'v1') })),
            );
            const next = [...newKeys]
              .sort((a, b) => a - b)
              .map((k) => [numberedKey(k), numberedValue(k, changed.includes(k) ? 'v2' : 'v1')] as const);
            const ops = await replaceOps(db.sm, next);
            // Exactly the difference, nothing more.
            const expected = [
              ...newKeys.filter((k) => !oldKeys.includes(k) || changed.includes(k)).map((k) => `put k${k}`),
              ...oldKeys.filter((k) => !newKeys.includes(k)).map((k) => `del k${k}`),
            ].sort();
            const got = ops.map((o) => `${o.type} k${Number(new TextDecoder().decode(o.key).slice(-5))}`).sort();
            expect(got).toEqual(expected);
            // And applying them makes the sublevel equal to the snapshot.
            await applyOps(db, ops);
            expect(await smPairs(db)).toEqual(next.map(([k, v]) => [k, v]));
          } finally {
            await db.db.close();
          }
        },
      ),
      { seed, numRuns: 30, verbose: true },
    );
  });

  test("the difference spans the iterator's batches: 1,500 records, every kind of change", async () => {
    const dir = await tempDir();
    const db = await openNodeDatabase(dir);
    try {
      const old = Array.from({ length: 1500 }, (_, k) => k).filter((k) => k % 7 !== 0); // 1/7 missing
      await applyOps(
        db,
        old.map((k) => ({ type: 'put', key: numberedKey(k), value: numberedValue(k, 'v1') })),
      );
      // The snapshot: every 5th record gone, every 11th changed, the missing ones added.
      const next = Array.from({ length: 1500 }, (_, k) => k)
        .filter((k) => k % 5 !== 0)
        .map((k) => [numberedKey(k), numberedValue(k, k % 11 === 0 ? 'v2' : 'v1')] as const);
      const ops = await replaceOps(db.sm, next);
      const dels = ops.filter((o) => o.type === 'del').length;
      const puts = ops.filter((o) => o.type === 'put').length;
      const inOld = (k: number) => k % 7 !== 0;
      const inNew = (k: number) => k % 5 !== 0;
      const all = Array.from({ length: 1500 }, (_, k) => k);
      expect(dels).toBe(all.filter((k) => inOld(k) && !inNew(k)).length);
      expect(puts).toBe(all.filter((k) => inNew(k) && (!inOld(k) || k % 11 === 0)).length);
      await applyOps(db, ops);
      expect(await smPairs(db)).toEqual(next.map(([k, v]) => [k, v]));
    } finally {
      await db.db.close();
    }
  });

  test('finishPieces gives the bytes of finish in pieces of at most the piece size', () => {
    const pairs = servicePairs(3000, 'a');
    const a = new SnapshotWriter();
    const b = new SnapshotWriter(100 * 1024);
    for (const [k, v] of pairs) {
      a.add(new TextEncoder().encode(k), v);
      b.add(new TextEncoder().encode(k), v);
    }
    const pieces = b.finishPieces(); // ~400 KiB of ~64-KiB records
    expect(pieces.length).toBeGreaterThanOrEqual(4);
    for (const p of pieces) expect(p.byteLength).toBeLessThanOrEqual(100 * 1024);
    const whole = joinPieces(pieces);
    expect(whole).toEqual(a.finish());
    expect(decodeSnapshotData(whole)).toHaveLength(3000);
  });

  test('snapshot records written into the pieces are the bytes msgpackr encodes', () => {
    // Keys and values across msgpack's length classes (bin 8/16/32), chunks of 1 to 16+ pairs.
    const sizes = [0, 1, 255, 256, 65_535, 65_536, 70_000];
    const pairs: [Uint8Array, Uint8Array][] = [];
    for (let i = 0; i < 40; i++) {
      const key = new TextEncoder().encode(`k/${String(i).padStart(3, '0')}`);
      pairs.push([key, new Uint8Array(sizes[i % sizes.length]!).fill(i)]);
    }
    const w = new SnapshotWriter(200 * 1024);
    for (const [k, v] of pairs) w.add(k, v);
    // What the writer did before: msgpackr's encoding of each chunk of ≥ 64 KiB of pairs.
    const record = (value: unknown): Uint8Array => {
      const body = encode(value);
      const head = new Uint8Array(8);
      new DataView(head.buffer).setUint32(0, body.byteLength);
      new DataView(head.buffer).setUint32(4, crc32(body));
      return joinPieces([head, body]);
    };
    const expected: Uint8Array[] = [record({ format: 1, kind: 'rollcall-sm' })];
    let chunk: [Uint8Array, Uint8Array][] = [];
    let bytes = 0;
    for (const [k, v] of pairs) {
      chunk.push([k, v]);
      bytes += k.byteLength + v.byteLength + 8;
      if (bytes >= 64 * 1024) {
        expected.push(record(chunk));
        chunk = [];
        bytes = 0;
      }
    }
    if (chunk.length > 0) expected.push(record(chunk));
    expected.push(record({ pairs: pairs.length }));
    const pieces = w.finishPieces();
    expect(pieces.length).toBeGreaterThan(1);
    expect(Buffer.from(joinPieces(pieces)).equals(Buffer.from(joinPieces(expected)))).toBe(true);
    expect(decodeSnapshotData(joinPieces(pieces))).toEqual(pairs);
  });

  /**
   * The SnapshotWriter before pieces (e6cff32): each record msgpackr's `encode` of its
   * value, behind its length and checksum. Followers of that release read what it wrote
   * with msgpackr, so the new writer must give the same bytes.
   */
  function oldWriterBytes(pairs: readonly (readonly [Uint8Array, Uint8Array])[]): Uint8Array {
    const parts: Uint8Array[] = [];
    const record = (value: unknown): void => {
      const body = encode(value);
      const head = new Uint8Array(8);
      new DataView(head.buffer).setUint32(0, body.byteLength);
      new DataView(head.buffer).setUint32(4, crc32(body));
      parts.push(head, body);
    };
    record({ format: 1, kind: 'rollcall-sm' });
    let chunk: (readonly [Uint8Array, Uint8Array])[] = [];
    let bytes = 0;
    for (const pair of pairs) {
      chunk.push(pair);
      bytes += pair[0].byteLength + pair[1].byteLength + 8;
      if (bytes >= 64 * 1024) {
        record(chunk);
        chunk = [];
        bytes = 0;
      }
    }
    if (chunk.length > 0) record(chunk);
    record({ pairs: pairs.length });
    return joinPieces(parts);
  }

  /** The bodies of the records in snapshot data (no checks: the data is ours). */
  function recordBodies(data: Uint8Array): Uint8Array[] {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const bodies: Uint8Array[] = [];
    for (let at = 0; at < data.byteLength; at += 8 + view.getUint32(at)) {
      bodies.push(data.subarray(at + 8, at + 8 + view.getUint32(at)));
    }
    return bodies;
  }

  test('property: the pieces hold the old writer’s bytes, which msgpackr decodes to the same pairs', () => {
    // Chunks of thousands of pairs (msgpack's 3-byte array head, 0xdc, as every real chunk
    // has), keys of any bytes (Buffer or Uint8Array, not only ASCII), values across bin
    // 8/16/32, pieces from smaller than one record to larger than the data.
    const seed = 0x5eed_0953;
    const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ maxLength: 24 }), { maxLength: 40, selector: toHex }),
        fc.array(fc.constantFrom(0, 1, 255, 256, 65_535, 65_536, 70_000), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 4000 }),
        fc.constantFrom(64, 1000, 64 * 1024, 200 * 1024, 1024 * 1024),
        fc.boolean(),
        (keys, sizes, smallPairs, pieceBytes, buffers) => {
          const sizeOf = new Map<string, { key: Uint8Array; size: number }>();
          // Thousands of small pairs, under keys starting with non-ASCII bytes.
          for (let i = 0; i < smallPairs; i++) {
            const key = Uint8Array.of(0xc3, 0xa9, i >>> 8, i & 0xff, 0x2f);
            sizeOf.set(toHex(key), { key, size: i % 17 });
          }
          for (const [i, key] of keys.entries()) sizeOf.set(toHex(key), { key, size: sizes[i % sizes.length]! });
          const sorted = [...sizeOf.values()].sort((a, b) => compareBytes(a.key, b.key));
          const pairs = sorted.map(({ key: k, size }, i): [Uint8Array, Uint8Array] => {
            const value = new Uint8Array(size).map((_, j) => (i * 31 + j) & 0xff);
            return buffers && i % 2 === 0 ? [Buffer.from(k), Buffer.from(value)] : [k, value];
          });
          const w = new SnapshotWriter(pieceBytes);
          for (const [k, v] of pairs) w.add(k, v);
          const pieces = w.finishPieces();
          const data = joinPieces(pieces);
          const old = oldWriterBytes(pairs);
          if (!Buffer.from(data).equals(Buffer.from(old))) throw new Error('the bytes differ from the old writer’s');
          // What a follower of the old release does: msgpackr's decode of each record.
          const bodies = recordBodies(data);
          const decoded = bodies.slice(1, -1).flatMap((b) => decode<[Uint8Array, Uint8Array][]>(b));
          expect(decoded.map(([k, v]) => [toHex(k), toHex(v)])).toEqual(pairs.map(([k, v]) => [toHex(k), toHex(v)]));
          expect(decode(bodies[bodies.length - 1]!)).toEqual({ pairs: pairs.length });
          // And this release's reader.
          const read = decodeSnapshotData(data);
          expect(read.length).toBe(pairs.length);
          for (let i = 0; i < read.length; i++) {
            if (compareBytes(read[i]![0], pairs[i]![0]) !== 0 || compareBytes(read[i]![1], pairs[i]![1]) !== 0)
              throw new Error(`pair ${i} read back differs`);
          }
        },
      ),
      { seed, numRuns: 40, verbose: true },
    );
  });

  test('a record longer than a piece gets a piece of its own', () => {
    const w = new SnapshotWriter(1024);
    w.add(new TextEncoder().encode('a'), new Uint8Array(10));
    w.add(new TextEncoder().encode('b'), new Uint8Array(70_000)); // flushes a ≥ 64-KiB chunk
    w.add(new TextEncoder().encode('c'), new Uint8Array(10));
    const pieces = w.finishPieces();
    // The header alone, the chunk of a and b whole (~70 KB), then c's chunk and the trailer.
    expect(pieces.map((p) => p.byteLength > 1024)).toEqual([false, true, false]);
    expect(recordBodies(pieces[1]!)).toHaveLength(1);
    expect(decodeSnapshotData(joinPieces(pieces)).map(([k]) => new TextDecoder().decode(k))).toEqual(['a', 'b', 'c']);
  });

  test('a finished SnapshotWriter refuses more pairs and a second finish', () => {
    const w = new SnapshotWriter(1024);
    w.add(new TextEncoder().encode('a'), new Uint8Array(1));
    const pieces = w.finishPieces();
    const handedOut = pieces.map((p) => p.slice());
    expect(() => w.add(new TextEncoder().encode('b'), new Uint8Array(1))).toThrow(/already finished/);
    expect(() => w.finishPieces()).toThrow(/already finished/);
    expect(() => w.finish()).toThrow(/already finished/);
    expect(pieces).toEqual(handedOut); // the pieces handed out did not change
  });

  test('snapshot data whose keys are out of order is refused as CORRUPT_SNAPSHOT', () => {
    const w = new SnapshotWriter();
    w.add(new TextEncoder().encode('i/b'), new Uint8Array([1]));
    w.add(new TextEncoder().encode('i/a'), new Uint8Array([2]));
    const err = (() => {
      try {
        decodeSnapshotData(w.finish());
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('CORRUPT_SNAPSHOT');
    expect((err as StorageError).message).toContain('out of order');
  });

  test("snapshot() is 'unavailable', then serves data that restores the exact state machine elsewhere", async () => {
    const dirA = await tempDir();
    const dirB = await tempDir();
    const a = await NodeStorage.open(dirA);
    const b = await NodeStorage.open(dirB);
    try {
      await a.append(makeEntries(1, [1, 1, 2, 2, 2, 3]));
      await writeStateMachine(a.database, servicePairs(1500, 'a'), { index: 5, term: 2 });
      await a.compact(4, conf, empty);

      expect(a.snapshot()).toBe('unavailable');
      const served = await a.whenSnapshotReady();
      expect(served.meta).toEqual({ index: 5, term: 2, conf });
      expect(a.snapshot()).toBe(served); // served until compaction passes it
      const snap = whole(served);
      expect(snap.data.byteLength).toBeGreaterThan(150_000); // several 64 KiB chunks

      // B: a lagging follower with its own log and older state.
      await b.append(makeEntries(1, [1, 1, 1]));
      await writeStateMachine(b.database, [...servicePairs(10, 'a'), ...servicePairs(10, 'zz')], { index: 2, term: 1 });
      const before = b.stats();
      await b.applySnapshot(snap);
      expect(b.stats().batches - before.batches).toBe(2); // the state machine batch, the WAL frame
      expect(await smPairs(b.database)).toEqual(await smPairs(a.database));
      expect(b.firstIndex()).toBe(6);
      expect(b.lastIndex()).toBe(5);
      expect(b.term(5)).toBe(2);
      expect(b.walSegments()).toHaveLength(1); // the old log's segment is gone
      expect(b.snapshot()).toBe(snap); // the installed snapshot can be served onward
    } finally {
      await a.close();
      await b.close();
    }
    await withStorage(dirB, async (s) => {
      expect(s.snapshotMeta()).toEqual({ index: 5, term: 2, conf });
      expect(s.firstIndex()).toBe(6);
      expect(s.lastIndex()).toBe(5);
      expect(s.initialState().confState).toEqual(conf);
    });
  });

  test('the old peer book (\\x00meta/peers) is node-local: no snapshot carries it, no install replaces it', async () => {
    const peersKey = new TextEncoder().encode(SM_LEGACY_PEERS_KEY);
    const dirA = await tempDir();
    const dirB = await tempDir();
    const a = await NodeStorage.open(dirA);
    const b = await NodeStorage.open(dirB);
    try {
      await a.append(makeEntries(1, [1, 1, 2, 2, 2]));
      await writeStateMachine(
        a.database,
        [...servicePairs(20, 'a'), [SM_LEGACY_PEERS_KEY, encode({ n1: '10.0.0.1:7101' })]],
        { index: 5, term: 2 },
      );
      await a.compact(4, conf, empty);
      const snap = whole(await a.whenSnapshotReady());
      expect(decodeSnapshotData(snap.data).some(([k]) => Buffer.from(k).equals(peersKey))).toBe(false);

      await b.append(makeEntries(1, [1, 1]));
      await writeStateMachine(b.database, [[SM_LEGACY_PEERS_KEY, encode({ n1: 'proxy:9101' })]], { index: 2, term: 1 });
      await b.applySnapshot(snap);
      expect(decode((await b.database.sm.get(peersKey)) ?? empty)).toEqual({ n1: 'proxy:9101' });
      // What a leader of an older build sends: its book in the snapshot. Not taken either.
      const older = [...decodeSnapshotData(snap.data), [peersKey, encode({ n1: 'leader:7101' })] as const].sort(
        ([x], [y]) => Buffer.compare(x, y),
      );
      expect(await replaceOps(b.database.sm, older)).toEqual([]);
      expect(isNodeLocalSmKey(peersKey)).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a prepared snapshot is consistent with the state machine read at one point', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1, 1, 1, 1]));
      await writeStateMachine(s.database, servicePairs(500, 'old'), { index: 3, term: 1 });
      await s.compact(3, conf, empty);
      expect(s.snapshot()).toBe('unavailable');
      // The registry applies more while the snapshot is being read.
      const applying = writeStateMachine(s.database, servicePairs(500, 'new'), { index: 6, term: 1 });
      const snap = whole(await s.whenSnapshotReady());
      await applying;
      const pairs = decodeSnapshotData(snap.data);
      const keys = pairs.map(([k]) => new TextDecoder().decode(k));
      const hasNew = keys.some((k) => k.includes('/new-'));
      expect(snap.meta.index).toBe(hasNew ? 6 : 3);
      expect(keys.filter((k) => k.includes('/new-'))).toHaveLength(hasNew ? 500 : 0);
    });
  });

  test('compaction past the prepared snapshot makes snapshot() prepare a newer one', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1, 2, 2, 2]));
      await writeStateMachine(s.database, servicePairs(3, 'x'), { index: 3, term: 1 });
      await s.compact(2, conf, empty);
      expect((await s.whenSnapshotReady()).meta.index).toBe(3);
      await writeStateMachine(s.database, servicePairs(3, 'y'), { index: 6, term: 2 });
      await s.compact(5, conf, empty);
      expect(s.snapshot()).toBe('unavailable');
      const snap = whole(await s.whenSnapshotReady());
      expect(snap.meta).toEqual({ index: 6, term: 2, conf });
    });
  });

  test('a snapshot older than a compaction in flight is not served (its follower would need another)', async () => {
    // The leader decides a compaction, then syncs the state machine (seconds at a large
    // registry); a follower that starts a transfer meanwhile was sent the snapshot prepared
    // earlier, and the compaction then dropped the entries after it: a second snapshot.
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 1, 1, 2, 2, 2]));
      await writeStateMachine(s.database, servicePairs(3, 'x'), { index: 3, term: 1 });
      await s.compact(2, conf, empty);
      expect((await s.whenSnapshotReady()).meta.index).toBe(3);
      await writeStateMachine(s.database, servicePairs(3, 'y'), { index: 6, term: 2 });
      const compacting = s.compact(5, conf, empty);
      expect(s.snapshot()).toBe('unavailable');
      await compacting;
      const snap = whole(await s.whenSnapshotReady());
      expect(snap.meta).toEqual({ index: 6, term: 2, conf });
    });
  });

  test('an empty state machine snapshots at the compaction meta', async () => {
    const dir = await tempDir();
    await withStorage(dir, async (s) => {
      await s.append(makeEntries(1, [1, 2, 3]));
      await s.compact(2, conf, empty);
      const snap = whole(await s.whenSnapshotReady());
      expect(snap.meta).toEqual({ index: 2, term: 2, conf });
      expect(decodeSnapshotData(snap.data)).toEqual([]);
    });
  });

  test('damaged or mismatched snapshot data is refused and changes nothing', async () => {
    const dirA = await tempDir();
    const dirB = await tempDir();
    const snap = await withStorage(dirA, async (a) => {
      await a.append(makeEntries(1, [1, 1, 1]));
      await writeStateMachine(a.database, servicePairs(50, 's'), { index: 3, term: 1 });
      await a.compact(3, conf, empty);
      return whole(await a.whenSnapshotReady());
    });
    await withStorage(dirB, async (b) => {
      await b.append(makeEntries(1, [1]));
      await writeStateMachine(b.database, servicePairs(5, 'b'));
      const sm = await smPairs(b.database);
      const stats = b.stats();

      const flipped = new Uint8Array(snap.data);
      flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
      const truncated = snap.data.subarray(0, snap.data.length - 3);
      const wrongMeta: Snapshot = { meta: { ...snap.meta, index: 4 }, data: snap.data };
      for (const bad of [{ ...snap, data: flipped }, { ...snap, data: truncated }, wrongMeta]) {
        expect((await storageError(b.applySnapshot(bad))).code).toBe('CORRUPT_SNAPSHOT');
      }
      expect(b.stats()).toEqual(stats);
      expect(await smPairs(b.database)).toEqual(sm);
      expect(b.lastIndex()).toBe(1);
      expect(b.firstIndex()).toBe(1);
      await b.applySnapshot(snap); // the intact one still installs
      expect(b.firstIndex()).toBe(4);
    });
  });

  test('applied without conf at another index fails preparation with INVALID_STATE_MACHINE', async () => {
    const dir = await tempDir();
    const errors: StorageError[] = [];
    const s = await NodeStorage.open(dir, { onSnapshotError: (e) => errors.push(e) });
    try {
      await s.append(makeEntries(1, [1, 1, 1]));
      await s.compact(1, conf, empty);
      await s.database.db
        .batch()
        .put(SM_APPLIED_KEY_BYTES, encodeApplied({ index: 3, term: 1 }), { sublevel: s.database.sm })
        .write();
      expect((await storageError(s.whenSnapshotReady())).code).toBe('INVALID_STATE_MACHINE');
      await Promise.resolve(); // the callback runs in a microtask
      expect(errors.map((e) => e.code)).toEqual(['INVALID_STATE_MACHINE']);
    } finally {
      await s.close();
    }
  });
});

describe('checksum', () => {
  test('table CRC-32 matches zlib and the standard check value', () => {
    expect(crc32Table(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    for (let n = 0; n < 200; n += 7) {
      const data = randomBytes(n * 13);
      expect(crc32Table(data)).toBe(zlib.crc32(data) >>> 0);
    }
  });
});

// ---- model test: NodeStorage (with a close/reopen) reads exactly like MemoryStorage ----

type Op =
  | { kind: 'append'; offset: number; terms: number[]; tag: number }
  | { kind: 'compact'; offset: number; voters: number }
  | { kind: 'hardState'; term: number; vote: string | null; commit: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      // Relative to lastIndex+1: negative overwrites the tail, positive leaves a gap (refused).
      offset: fc.integer({ min: -6, max: 1 }),
      terms: fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 6 }),
      tag: fc.integer({ min: 0, max: 255 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('compact' as const),
      // Relative to the snapshot index: ≤ 0 is a no-op, beyond lastIndex is refused.
      offset: fc.integer({ min: -1, max: 6 }),
      voters: fc.integer({ min: 1, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('hardState' as const),
      term: fc.nat(20),
      vote: fc.option(fc.constantFrom('n1', 'n2', 'n3'), { nil: null }),
      commit: fc.nat(30),
    }),
  },
);

async function applyOp(s: MemoryStorage | NodeStorage, op: Op): Promise<'ok' | 'refused'> {
  try {
    switch (op.kind) {
      case 'append':
        await s.append(makeEntries(s.lastIndex() + 1 + op.offset, op.terms, op.tag).filter((e) => e.index >= 1));
        break;
      case 'compact': {
        const voters = Array.from({ length: op.voters }, (_, i) => `n${i + 1}`);
        await s.compact(s.firstIndex() - 1 + op.offset, { voters, learners: [] }, empty);
        break;
      }
      case 'hardState':
        await s.setHardState({ term: op.term, vote: op.vote, commit: op.commit });
        break;
    }
    return 'ok';
  } catch {
    return 'refused';
  }
}

function reads(s: MemoryStorage | NodeStorage) {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const terms: (number | string)[] = [];
  for (let i = Math.max(0, first - 3); i <= last + 2; i++) terms.push(s.term(i));
  const entries: unknown[] = [];
  for (const maxBytes of [0, 60, 200, INF]) entries.push(s.entries(first, last + 1, maxBytes));
  entries.push(
    s.entries(first - 1, last + 1, INF),
    s.entries(first, last + 2, INF),
    s.entries(last + 1, last + 1, INF),
  );
  if (last >= first + 1) entries.push(s.entries(first + 1, last, INF));
  return { first, last, terms, entries, initial: s.initialState() };
}

describe('NodeStorage model test', () => {
  test('random append/compact/setHardState sequences read the same as MemoryStorage, across a reopen', async () => {
    const seed = 0x5eed_2024;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 30 }), fc.nat(), async (ops, cut) => {
        const dir = await mkdtemp(join(tmpdir(), 'rollcall-model-'));
        const memory = new MemoryStorage();
        let level = await NodeStorage.open(dir);
        try {
          const reopenAt = cut % ops.length;
          for (const [i, op] of ops.entries()) {
            if (i === reopenAt) {
              await level.close();
              level = await NodeStorage.open(dir);
              expect(reads(level)).toEqual(reads(memory));
            }
            const m = await applyOp(memory, op);
            const l = await applyOp(level, op);
            expect(l, `outcome of ${JSON.stringify(op)}`).toBe(m);
            expect(reads(level)).toEqual(reads(memory));
          }
          await level.close();
          level = await NodeStorage.open(dir);
          expect(reads(level)).toEqual(reads(memory));
        } finally {
          await level.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { seed, numRuns: 60, verbose: true },
    );
  });
});
