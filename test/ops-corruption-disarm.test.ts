/**
 * `rollcall check --disarm` (disarmCorruptionMark) clears one record and changes nothing
 * else: a data directory in an older storage format is refused as it is, not migrated
 * behind the build that runs the member (a format is never converted back: docs/storage.md).
 * The fixture is a data directory written by the last format 1 build (make-data-v1.sh).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { disarmCorruptionMark, readCorruptionMark, writeCorruptionMark } from '../src/ops/corruption-check.js';
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
