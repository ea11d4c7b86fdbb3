import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openNodeDatabase } from '../src/storage/index.js';
import {
  checkLevelDbTables,
  DAMAGE_MARKER,
  damageReported,
  refuseIfLevelDbRepaired,
  refuseIfMarkedDamaged,
} from '../src/storage/leveldb-damage.js';
import { crc32c, maskCrc, scanLogBytes } from '../src/storage/leveldb-log-scan.js';
import { snappyDecompress } from '../src/storage/leveldb-table-scan.js';

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
    expect(
      damageReported(
        '2026/12/03-06:59:15.036488 7f89d3fff6c0 Recovering log #3\n2026/12/03-06:59:15.049113 7f89d3fff6c0 Level-0 table #5: 19141 bytes OK',
      ),
    ).toEqual([]);
  });

  it('refuses a repaired open naming the file, marks the directory, and refuses every later start', async () => {
    const d = await dir();
    await writeFile(join(d, 'LOG'), REPAIRED_LOG);
    await expect(refuseIfLevelDbRepaired(d)).rejects.toMatchObject({
      code: 'CORRUPT_STATE',
      message: expect.stringMatching(/000003\.log: dropping 15622 bytes.*new id/),
    });
    expect(await readFile(join(d, DAMAGE_MARKER), 'utf8')).toContain('000003.log');
    // LevelDB rotates LOG at the next open: the marker still refuses.
    await writeFile(join(d, 'LOG'), 'clean');
    await expect(refuseIfMarkedDamaged(d)).rejects.toMatchObject({
      code: 'CORRUPT_STATE',
      message: expect.stringMatching(/found damaged by an earlier start/),
    });
  });

  it('lets LevelDB drop a torn tail it was told of, but not damage elsewhere', async () => {
    const d = await dir();
    await writeFile(join(d, 'LOG'), REPAIRED_LOG);
    await refuseIfLevelDbRepaired(d, new Set(['/data/n1/000003.log']));
    await expect(refuseIfLevelDbRepaired(d, new Set(['/data/n1/000009.log']))).rejects.toMatchObject({
      code: 'CORRUPT_STATE',
    });
  });

  it('lets a clean directory through', async () => {
    const d = await dir();
    await refuseIfMarkedDamaged(d);
    await refuseIfLevelDbRepaired(d); // no LOG yet
    await writeFile(join(d, 'LOG'), 'Recovering log #3');
    await refuseIfLevelDbRepaired(d);
  });
});

/** One LevelDB log record of `type` (1 full, 2 first, 3 middle, 4 last) holding `data`. */
function record(data: Uint8Array, type = 1): Uint8Array {
  const out = new Uint8Array(7 + data.length);
  out[4] = data.length & 0xff;
  out[5] = data.length >> 8;
  out[6] = type;
  out.set(data, 7);
  new DataView(out.buffer).setUint32(0, maskCrc(crc32c(out, 6)), true);
  return out;
}

/** Full records of `size` bytes each, packed into 32-KiB blocks as LevelDB writes them. */
function logOf(records: number, size: number): Uint8Array {
  const out: number[] = [];
  for (let r = 0; r < records; r++) {
    const left = 32768 - (out.length % 32768);
    if (left < 7 + size) for (let i = 0; i < left; i++) out.push(0); // padding to the next block
    for (const b of record(new Uint8Array(size).fill(r & 0xff))) out.push(b);
  }
  return Uint8Array.from(out);
}

describe('LevelDB log scan', () => {
  it('computes CRC-32C as LevelDB does (the check value of "123456789")', () => {
    expect(crc32c(new TextEncoder().encode('123456789')).toString(16)).toBe('e3069283');
  });

  it('tells a torn tail (nothing valid after) from damage in the middle (intact blocks after)', () => {
    const clean = logOf(200, 1017); // 32 records of 1 KiB fill each block exactly: ~6 blocks
    expect(scanLogBytes(clean)).toEqual({ firstBad: null, validAfterBad: false });
    const tail = clean.slice();
    tail.fill(0, tail.length - 3000); // pages never written before a power loss
    expect(scanLogBytes(tail)).toMatchObject({ validAfterBad: false });
    expect(scanLogBytes(tail).firstBad).not.toBeNull();
    expect(scanLogBytes(clean.slice(0, clean.length - 500))).toEqual({ firstBad: null, validAfterBad: false }); // cut short: EOF
    const middle = clean.slice();
    for (let i = 5000; i < 5016; i++) middle[i]! ^= 0xff;
    expect(scanLogBytes(middle)).toMatchObject({ validAfterBad: true });
  });
});

describe('a real node database', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  /** A node database with 300 unsynced state-machine batches of ~300 bytes, closed; the path of its LevelDB log. */
  async function written(): Promise<{ dir: string; log: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'rollcall-ldb-real-'));
    dirs.push(dir);
    const h = await openNodeDatabase(dir);
    for (let i = 0; i < 300; i++)
      await h.db.batch([
        {
          type: 'put',
          sublevel: h.sm,
          key: new TextEncoder().encode(`k${i}`),
          value: new Uint8Array(300).fill(i & 0xff),
        },
      ]);
    await h.db.close();
    const name = (await readdir(dir))
      .filter((n) => n.endsWith('.log'))
      .sort()
      .at(-1)!;
    return { dir, log: join(dir, name) };
  }

  it('opens after a power loss tore the tail of its log (the Raft WAL replays what LevelDB drops)', async () => {
    const { dir, log } = await written();
    const bytes = await readFile(log);
    bytes.fill(0, bytes.length - 3000);
    await writeFile(log, bytes);
    const h = await openNodeDatabase(dir);
    await h.db.close();
    await expect(readFile(join(dir, DAMAGE_MARKER))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses damage with intact records after it, and keeps refusing', async () => {
    const { dir, log } = await written();
    const bytes = await readFile(log);
    expect(bytes.length).toBeGreaterThan(40_000);
    for (let i = 1000; i < 1016; i++) bytes[i]! ^= 0xff;
    await writeFile(log, bytes);
    await expect(openNodeDatabase(dir)).rejects.toMatchObject({
      code: 'CORRUPT_STATE',
      message: expect.stringMatching(/damaged at offset \d+.*new id/),
    });
    await expect(openNodeDatabase(dir)).rejects.toMatchObject({
      code: 'CORRUPT_STATE',
      message: expect.stringMatching(/found damaged by an earlier start/),
    });
  });

  /** written(), opened once more: LevelDB turns its log into a table at open. The table's path. */
  async function withTable(): Promise<{ dir: string; table: string }> {
    const { dir } = await written();
    const h = await openNodeDatabase(dir);
    await h.db.close();
    const tables = (await readdir(dir)).filter((n) => /^\d+\.(ldb|sst)$/.test(n));
    expect(tables.length).toBeGreaterThan(0);
    return { dir, table: join(dir, tables.sort().at(-1)!) };
  }

  it('checks every block of its tables at open and opens a clean one', async () => {
    const { dir } = await withTable();
    const summary = await checkLevelDbTables(dir);
    expect(summary.tables).toBeGreaterThan(0);
    expect(summary.blocks).toBeGreaterThan(summary.tables * 3); // data blocks, index, metaindex, filter
    const h = await openNodeDatabase(dir);
    expect(h.tableCheck).toMatchObject({ tables: summary.tables, bytes: summary.bytes });
    await h.db.close();
  });

  it('refuses a table damaged in the middle, naming the file, and keeps refusing', async () => {
    const { dir, table } = await withTable();
    const bytes = await readFile(table);
    expect(bytes.length).toBeGreaterThan(5_000);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01; // one bit: LevelDB itself would read it back as a wrong value
    await writeFile(table, bytes);
    const name = table.split('/').at(-1)!.replace('.', '\\.');
    await expect(openNodeDatabase(dir)).rejects.toMatchObject({
      code: 'CORRUPT_STATE',
      message: expect.stringMatching(
        new RegExp(
          `${name}: LevelDB's table file is damaged \\(its data block at offset \\d+ fails its checksum\\).*new id`,
        ),
      ),
    });
    await expect(openNodeDatabase(dir)).rejects.toMatchObject({
      code: 'CORRUPT_STATE',
      message: expect.stringMatching(/found damaged by an earlier start/),
    });
  });

  it('refuses a truncated table', async () => {
    const { dir, table } = await withTable();
    const bytes = await readFile(table);
    await writeFile(table, bytes.subarray(0, bytes.length - 100));
    await expect(openNodeDatabase(dir)).rejects.toMatchObject({
      code: 'CORRUPT_STATE',
      message: expect.stringMatching(/MANIFEST says/),
    });
  });

  it('ignores a table the MANIFEST does not list (half-written when a compaction crashed)', async () => {
    const { dir } = await withTable();
    await writeFile(join(dir, '000999.ldb'), new Uint8Array(5000).fill(7));
    const h = await openNodeDatabase(dir);
    await h.db.close();
  });
});

describe('Snappy', () => {
  it('decodes literals and overlapping copies, and refuses what does not add up', () => {
    // "abcabcabcabcX": length 13; literal "abc"; copy 9 at offset 3 (1-byte offset form); literal "X".
    const data = Uint8Array.from([13, (3 - 1) << 2, 97, 98, 99, 1 | ((9 - 4) << 2), 3, 0, 88]);
    expect(new TextDecoder().decode(snappyDecompress(data)!)).toBe('abcabcabcabcX');
    expect(snappyDecompress(Uint8Array.from([14, ...data.subarray(1)]))).toBeNull(); // one byte short
    expect(snappyDecompress(Uint8Array.from([5, 1 | (1 << 2), 9]))).toBeNull(); // a copy before any output
  });
});
