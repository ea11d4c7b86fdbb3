/** Shared by the storage tests: temporary data directories, an open-run-close helper, and error capture. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import { NodeStorage, type NodeStorageOptions, StorageError } from '../../src/storage/index.js';

/** A maker of fresh directories under the OS temp dir, all removed after each test. */
export function tempDirs(prefix: string): () => Promise<string> {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

/** Opens, runs, and always closes. */
export async function withStorage<T>(
  dir: string,
  fn: (s: NodeStorage) => Promise<T>,
  options: NodeStorageOptions = {},
): Promise<T> {
  const s = await NodeStorage.open(dir, options);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

/** The StorageError `p` rejects with; fails the test if it resolves or rejects with something else. */
export async function storageError(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return err as StorageError;
  }
  throw new Error('expected a StorageError, the call succeeded');
}
