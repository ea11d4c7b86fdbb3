import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DAMAGE_MARKER, damageReported, refuseIfLevelDbRepaired, refuseIfMarkedDamaged } from '../src/storage/leveldb-damage.js';

/** What LevelDB wrote to LOG when it opened a database whose log had a damaged block. */
const REPAIRED_LOG = [
  '2026/12/03-06:59:15.036488 7f89d3fff6c0 Recovering log #3',
  '2026/12/03-06:59:15.038910 7f89d3fff6c0 (ignoring error) /data/n1/000003.log: dropping 15622 bytes; Corruption: checksum mismatch',
  '2026/12/03-06:59:15.038935 7f89d3fff6c0 (ignoring error) /data/n1/000003.log: dropping 26 bytes; Corruption: missing start of fragmented record(2)',
  '2026/12/03-06:59:15.039164 7f89d3fff6c0 Level-0 table #5: started',
  '2026/12/03-06:59:15.049113 7f89d3fff6c0 Level-0 table #5: 19141 bytes OK',
  '2026/12/03-06:59:15.056855 7f89d3fff6c0 Delete type=0 #3',
].join('\n');

describe('LevelDB damage at open', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const dir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'rollcall-ldb-'));
    dirs.push(d);
    return d;
  };

  it('finds the lines where LevelDB dropped damaged records, and nothing in a clean open', () => {
    expect(damageReported(REPAIRED_LOG)).toEqual([
      '(ignoring error) /data/n1/000003.log: dropping 15622 bytes; Corruption: checksum mismatch',
      '(ignoring error) /data/n1/000003.log: dropping 26 bytes; Corruption: missing start of fragmented record(2)',
    ]);
    expect(damageReported('2026/12/03-06:59:15.036488 7f89d3fff6c0 Recovering log #3\n2026/12/03-06:59:15.049113 7f89d3fff6c0 Level-0 table #5: 19141 bytes OK')).toEqual([]);
  });

  it('refuses a repaired open naming the file, marks the directory, and refuses every later start', async () => {
    const d = await dir();
    await writeFile(join(d, 'LOG'), REPAIRED_LOG);
    await expect(refuseIfLevelDbRepaired(d)).rejects.toMatchObject({ code: 'CORRUPT_STATE', message: expect.stringMatching(/000003\.log: dropping 15622 bytes.*new id/) });
    expect(await readFile(join(d, DAMAGE_MARKER), 'utf8')).toContain('000003.log');
    // LevelDB rotates LOG at the next open: the marker still refuses.
    await writeFile(join(d, 'LOG'), 'clean');
    await expect(refuseIfMarkedDamaged(d)).rejects.toMatchObject({ code: 'CORRUPT_STATE', message: expect.stringMatching(/found damaged by an earlier start/) });
  });

  it('lets a clean directory through', async () => {
    const d = await dir();
    await refuseIfMarkedDamaged(d);
    await refuseIfLevelDbRepaired(d); // no LOG yet
    await writeFile(join(d, 'LOG'), 'Recovering log #3');
    await refuseIfLevelDbRepaired(d);
  });
});
