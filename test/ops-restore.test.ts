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
    const err = await refusal(restoreMember({ file: join(root, 'missing.snap'), dataDir: data, id: 'n1', peers }));
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
    const a = restoreClusterId('ab'.repeat(32), peers);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(restoreClusterId('ab'.repeat(32), new Map([...peers].reverse()))).toBe(a);
    expect(restoreClusterId('ab'.repeat(32), new Map([['n1', { host: '127.0.0.1', port: 7101 }]]))).not.toBe(a);
    expect(restoreClusterId('cd'.repeat(32), peers)).not.toBe(a);
  });
});
