/**
 * The online disarm (CorruptionChecker.disarm, POST /v1/cluster/check/disarm) clears the mark
 * in memory and on disk, even while the write of that mark is still on its way, and clears
 * nothing when the delete fails. `rollcall check --disarm --data` (disarmCorruptionMark)
 * clears one record and changes nothing else: a data directory in an older storage format is refused as it is, not migrated
 * behind the build that runs the member (a format is never converted back: docs/storage.md).
 * The fixture is a data directory written by the last format 1 build (make-data-v1.sh).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log/index.js';
import {
  CorruptionChecker,
  clearCorruptionMark,
  disarmCorruptionMark,
  readCorruptionMark,
  writeCorruptionMark,
} from '../src/ops/corruption-check.js';
import { FORMAT_VERSION, openNodeDatabase, readFormatVersion, StorageError } from '../src/storage/index.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'data-v1.tar.gz');

describe('disarmCorruptionMark', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rollcall-disarm-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('refuses a data directory in an older storage format and leaves it as it was', async () => {
    await promisify(execFile)('tar', ['-xzf', FIXTURE, '-C', root]);
    const dir = join(root, 'n1');
    const err = await disarmCorruptionMark(dir).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).code).toBe('FORMAT_TOO_OLD');
    expect((err as StorageError).message).toContain(`${dir} is in storage format 1`);
    // Still format 1: no WAL was made, the version record is untouched.
    expect(await readFormatVersion(dir)).toBe(1);
    expect(await readdir(dir)).not.toContain('wal');
  });

  it('clears the mark of a directory in this format, and only the mark', async () => {
    const dir = join(root, 'n2');
    const db = await openNodeDatabase(dir);
    await db.sm.put(new TextEncoder().encode('k'), new TextEncoder().encode('v'));
    const mark = { by: 'n1', detail: 'hash differs', at: Date.UTC(2026, 0, 1) };
    await writeCorruptionMark(db, mark);
    await db.db.close();

    expect(await disarmCorruptionMark(dir)).toEqual(mark);
    expect(await disarmCorruptionMark(dir)).toBeNull();
    const after = await openNodeDatabase(dir);
    try {
      expect(await readCorruptionMark(after)).toBeNull();
      expect(await after.raft.keys().all()).toEqual(['format']);
      expect(new TextDecoder().decode(await after.sm.get(new TextEncoder().encode('k')))).toBe('v');
    } finally {
      await after.db.close();
    }
    expect(await readFormatVersion(dir)).toBe(FORMAT_VERSION);
  });
});

describe('CorruptionChecker.disarm (online)', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rollcall-disarm-online-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const checkerOver = (deps: {
    persistMark: (mark: { by: string; detail: string; at: number }) => Promise<void>;
    clearStoredMark: () => Promise<void>;
  }) =>
    new CorruptionChecker({
      id: 'n2',
      log: createLogger({ level: 'silent' }),
      now: () => 1_000,
      monotonicNow: () => 0,
      members: () => ['n1', 'n2', 'n3'],
      appliedIndex: () => 0,
      selfHash: async () => ({ index: 0, hash: 'h', keys: 0 }),
      askHash: async () => ({ index: 0, hash: 'h', keys: 0 }),
      tellCorrupt: () => undefined,
      ...deps,
    });

  it('deletes the stored mark after a write of it still under way, so a restart does not bring it back', async () => {
    const db = await openNodeDatabase(join(root, 'n2'));
    try {
      // The mark's write is held until the disarm has started: it must not land after the delete.
      let release = (): void => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const checker = checkerOver({
        persistMark: async (mark) => {
          await held;
          await writeCorruptionMark(db, mark);
        },
        clearStoredMark: () => clearCorruptionMark(db),
      });
      checker.markSelfCorrupt('n1', 'hash differs at index 7');
      expect(checker.selfCorruption).toMatchObject({ by: 'n1' });
      const disarmed = checker.disarm('n3');
      expect(checker.selfCorruption).toBeNull();
      release();
      expect(await disarmed).toEqual({ by: 'n1', detail: 'hash differs at index 7', at: 1_000 });
      expect(await readCorruptionMark(db)).toBeNull();
      // Nothing to clear the second time; the next verdict marks it again.
      expect(await checker.disarm('n3')).toBeNull();
      checker.markSelfCorrupt('n1', 'still differs');
      expect(checker.selfCorruption).toMatchObject({ detail: 'still differs' });
    } finally {
      await db.db.close();
    }
  });

  it('keeps refusing reads when the stored mark cannot be deleted', async () => {
    const checker = checkerOver({
      persistMark: async () => undefined,
      clearStoredMark: async () => {
        throw new Error('disk full');
      },
    });
    checker.markSelfCorrupt('n1', 'hash differs');
    await expect(checker.disarm('n3')).rejects.toThrow('disk full');
    expect(checker.selfCorruption).toMatchObject({ by: 'n1', detail: 'hash differs' });
  });
});

describe('CorruptionChecker.forgetVerdicts (a disarm resolves the alert)', () => {
  it('drops the latest verdicts on disarmed members until the next report, and says so', async () => {
    let n3Hash = 'bad';
    const checker = new CorruptionChecker({
      id: 'n1',
      log: createLogger({ level: 'silent' }),
      now: () => 1_000,
      monotonicNow: () => 0,
      members: () => ['n1', 'n2', 'n3'],
      appliedIndex: () => 5,
      selfHash: async () => ({ index: 5, hash: 'good', keys: 1 }),
      askHash: async (peer) => ({ index: 5, hash: peer === 'n3' ? n3Hash : 'good', keys: 1 }),
      tellCorrupt: () => undefined,
    });
    let changes = 0;
    const stop = checker.onChange(() => changes++);
    await checker.run(1000);
    expect(checker.corruptMembers().map((m) => m.id)).toEqual(['n3']);
    const afterReport = changes;
    expect(afterReport).toBeGreaterThan(0);

    // A member the report did not name changes nothing; the named one is dropped, once.
    checker.forgetVerdicts(['n2']);
    expect(changes).toBe(afterReport);
    checker.forgetVerdicts(['n3']);
    expect(checker.corruptMembers()).toEqual([]);
    expect(changes).toBe(afterReport + 1);
    checker.forgetVerdicts(['n3']);
    expect(changes).toBe(afterReport + 1);

    // A disarm vouches for nothing: the next check that finds it corrupt names it again.
    await checker.run(1000);
    expect(checker.corruptMembers().map((m) => m.id)).toEqual(['n3']);
    n3Hash = 'good';
    await checker.run(1000);
    expect(checker.corruptMembers()).toEqual([]);
    stop();
    const stopped = changes;
    await checker.run(1000);
    expect(changes).toBe(stopped);
  });
});
