/** `rollcall snapshot restore`'s refusals that need no cluster (src/ops/restore.ts); the whole path is in ops-backup-restore.test.ts. */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { RestoreError, restoreClusterId, restoreMember } from '../src/ops/restore.js';
import { tempDirs } from './helpers/storage.js';

const tempDir = tempDirs('rollcall-restore-');
const peers = new Map([
  ['n1', { host: '127.0.0.1', port: 7101 }],
  ['n2', { host: '127.0.0.1', port: 7102 }],
]);

async function refusal(p: Promise<unknown>): Promise<RestoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RestoreError);
  return err as RestoreError;
}

describe('restoreMember refusals', () => {
  it('never touches a data directory that is not empty', async () => {
    const root = await tempDir();
    const data = join(root, 'n1');
    await mkdir(data);
    await writeFile(join(data, 'precious'), 'keep me');
    const err = await refusal(
      restoreMember({ file: join(root, 'missing.snap'), dataDir: data, id: 'n1', peers, token: 't1' }),
    );
    expect(err.code).toBe('DATA_DIR_NOT_EMPTY');
    expect(err.message).toMatch(/n1 is not empty \(1 entries\): restore never overwrites a data directory/);
    expect(await readdir(data)).toEqual(['precious']);
    expect(await readdir(root)).toEqual(['n1']);
  });

  it('wants the member in --peers and a printable cluster id', async () => {
    const root = await tempDir();
    expect((await refusal(restoreMember({ file: 'f', dataDir: join(root, 'x'), id: 'n9', peers }))).message).toMatch(
      /--peers must include this member \(n9\)/,
    );
    expect(
      (await refusal(restoreMember({ file: 'f', dataDir: join(root, 'x'), id: 'n1', peers, clusterId: 'has space' })))
        .code,
    ).toBe('INVALID_ARGUMENT');
  });

  it('derives one cluster id for every member restored alike, another for other peers', () => {
    const a = restoreClusterId('ab'.repeat(32), peers, 't1');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(restoreClusterId('ab'.repeat(32), new Map([...peers].reverse()), 't1')).toBe(a);
    expect(restoreClusterId('ab'.repeat(32), new Map([['n1', { host: '127.0.0.1', port: 7101 }]]), 't1')).not.toBe(a);
    expect(restoreClusterId('cd'.repeat(32), peers, 't1')).not.toBe(a);
  });

  it('gives two restores of one backup with the same --peers different ids when their tokens differ', () => {
    // A test cluster and the real one restored from one backup must never talk to each other.
    expect(restoreClusterId('ab'.repeat(32), peers, 'staging')).not.toBe(
      restoreClusterId('ab'.repeat(32), peers, 'prod'),
    );
  });

  it('wants a token or a cluster id, not both, and a printable token', async () => {
    const root = await tempDir();
    const base = { file: 'f', dataDir: join(root, 'x'), id: 'n1', peers };
    const none = await refusal(restoreMember(base));
    expect(none.code).toBe('INVALID_ARGUMENT');
    expect(none.message).toMatch(/--initial-cluster-token TOKEN .* or --cluster-id ID/);
    expect((await refusal(restoreMember({ ...base, token: 't', clusterId: 'c' }))).message).toMatch(/give one of them/);
    expect((await refusal(restoreMember({ ...base, token: 'has space' }))).message).toMatch(
      /--initial-cluster-token must be 1-256 printable characters/,
    );
    expect(await readdir(root)).toEqual([]);
  });
});
