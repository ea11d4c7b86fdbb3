/**
 * The backup file format (src/ops/backup-format.ts) and its reading out of a real LevelDB
 * (backup-stream.ts): round trips, and every truncation and every flipped byte refused.
 */
import { describe, expect, it } from 'vitest';

import { encode } from '../src/codec/index.js';
import {
  BackupEncoder,
  BackupFileError,
  type BackupHeader,
  decodeBackup,
  encodeBackup,
  type Pair,
} from '../src/ops/backup-format.js';
import { openBackup } from '../src/ops/backup-stream.js';
import { openNodeDatabase } from '../src/storage/index.js';
import { tempDirs } from './helpers/storage.js';

const tempDir = tempDirs('rollcall-backup-');
const te = new TextEncoder();
const pair = (k: string, v: unknown): Pair => [te.encode(k), encode(v)];

const HEADER: Omit<BackupHeader, 'counts'> = {
  kind: 'rollcall-snapshot',
  format: 1,
  clusterId: null,
  node: 'n2',
  createdAt: '2025-01-02T03:04:05.000Z',
  revision: 7,
  applied: { index: 12, term: 3 },
  conf: { voters: ['n1', 'n2', 'n3'], learners: [] },
};

const PAIRS: Pair[] = [
  pair('\x00meta/applied', { index: 12, term: 3 }),
  pair('\x00meta/conf', { voters: ['n1', 'n2', 'n3'], learners: [] }),
  pair('\x00meta/revision', { revision: 7, emptied: 0 }),
  pair('i/prod/orders/o1', { id: 'o1' }),
  pair('i/prod/orders/o2', { id: 'o2' }),
  pair('s/sess-1', { ttlMs: 10000 }),
  pair('v/prod/orders', { revision: 7 }),
];

function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof BackupFileError) return err.problem;
    throw err;
  }
  return 'accepted';
}

describe('backup file format', () => {
  it('round-trips header, pairs and counts, and names the checksum', () => {
    const bytes = encodeBackup(HEADER, PAIRS);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('RCSNAP\r\n');
    const decoded = decodeBackup(bytes, 'x.snap');
    expect(decoded.header).toEqual({ ...HEADER, counts: { services: 1, instances: 2, sessions: 1, pairs: 7 } });
    expect(decoded.pairs.map(([k]) => new TextDecoder().decode(k))).toEqual(
      PAIRS.map(([k]) => new TextDecoder().decode(k)),
    );
    expect(decoded.pairs.map(([, v]) => Buffer.from(v).toString('hex'))).toEqual(
      PAIRS.map(([, v]) => Buffer.from(v).toString('hex')),
    );
    expect(decoded.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(decoded.bytes).toBe(bytes.byteLength);
  });

  it('spreads many pairs over several chunks', () => {
    const many: Pair[] = [];
    for (let i = 0; i < 2000; i++)
      many.push(pair(`i/prod/big/${String(i).padStart(5, '0')}`, { pad: 'x'.repeat(100) }));
    const decoded = decodeBackup(encodeBackup(HEADER, many), 'big.snap');
    expect(decoded.pairs).toHaveLength(2000);
    expect(decoded.header.counts.instances).toBe(2000);
  });

  it('refuses every truncation, naming the file', () => {
    const bytes = encodeBackup(HEADER, PAIRS);
    for (let len = 0; len < bytes.byteLength; len++) {
      const p = problem(() => decodeBackup(bytes.subarray(0, len), 'cut.snap'));
      expect([len, p]).toEqual([len, len === 0 ? 'NOT_A_SNAPSHOT' : 'TRUNCATED']);
    }
    expect(() => decodeBackup(bytes.subarray(0, bytes.byteLength - 5), 'cut.snap')).toThrow(
      /^cut\.snap: snapshot file is truncated: the SHA-256 trailer has 27 of its 32 bytes$/,
    );
  });

  it('refuses every flipped byte', () => {
    const bytes = encodeBackup(HEADER, PAIRS);
    for (let at = 0; at < bytes.byteLength; at++) {
      const damaged = Buffer.from(bytes);
      damaged[at] = damaged[at]! ^ 0x10;
      const p = problem(() => decodeBackup(damaged, 'flip.snap'));
      // A flip in a length field can make a record look longer than the file: reported as truncated.
      expect(['NOT_A_SNAPSHOT', 'CORRUPT', 'TRUNCATED'], `byte ${at}`).toContain(p);
    }
    const middle = Buffer.from(bytes);
    const mid = Math.floor(bytes.byteLength / 2);
    middle[mid] = middle[mid]! ^ 0x01;
    expect(() => decodeBackup(middle, 'flip.snap')).toThrow(
      /^flip\.snap: snapshot file is corrupt: record \d+ at byte \d+ fails its CRC-32$/,
    );
  });

  it('catches what the per-record checksums cannot: bytes added after the trailer, a trailer that does not match', () => {
    const bytes = encodeBackup(HEADER, PAIRS);
    expect(() => decodeBackup(Buffer.concat([bytes, Buffer.from([0])]), 'f')).toThrow(
      /1 unexpected bytes after the SHA-256 trailer/,
    );
    const other = Buffer.from(bytes);
    other[other.byteLength - 1] = other[other.byteLength - 1]! ^ 0xff;
    expect(() => decodeBackup(other, 'f')).toThrow(/does not match the trailer/);
  });

  it('refuses a file of another format version, and one whose header miscounts', () => {
    const future = encodeBackup({ ...HEADER, format: 2 as 1 }, PAIRS);
    expect(() => decodeBackup(future, 'future.snap')).toThrow(
      /future\.snap: snapshot format not supported by this build: it is in format 2; this build reads format 1/,
    );
    const miscounted = encodeBackup({ ...HEADER, counts: { services: 1, instances: 3, sessions: 1, pairs: 7 } }, PAIRS);
    expect(() => decodeBackup(miscounted, 'm.snap')).toThrow(/the header counts 3 instances, the file holds 2/);
    expect(problem(() => decodeBackup(Buffer.from('hello world, not a snapshot'), 'txt'))).toBe('NOT_A_SNAPSHOT');
  });

  it('encodes in pieces exactly as at once', () => {
    const enc = new BackupEncoder();
    const counts = { services: 1, instances: 2, sessions: 1, pairs: 7 };
    const pieces = [
      enc.start({ ...HEADER, counts }),
      enc.chunk(PAIRS.slice(0, 3)),
      enc.chunk(PAIRS.slice(3)),
      enc.end().bytes,
    ];
    expect(decodeBackup(Buffer.concat(pieces), 'p').pairs).toHaveLength(7);
    expect(() => enc.chunk([])).toThrow(/not started, or ended/);
  });
});

describe('a backup read out of LevelDB', () => {
  it('reads one consistent state while writes go on, and leaves node-local keys out', async () => {
    const dir = await tempDir();
    const db = await openNodeDatabase(dir);
    try {
      const put = (k: string, v: unknown) => db.sm.put(te.encode(k), encode(v));
      await put('\x00meta/applied', { index: 5, term: 2 });
      await put('\x00meta/conf', { voters: ['n1'], learners: [] });
      await put('\x00meta/revision', { revision: 3, emptied: 0 });
      await put('\x00meta/peers', { n1: '127.0.0.1:1' }); // node-local: never in a backup
      for (let i = 0; i < 3000; i++) await put(`i/prod/s/${String(i).padStart(4, '0')}`, { n: i, pad: 'y'.repeat(50) });
      await put('v/prod/s', { revision: 3 });

      const backup = await openBackup(db, { node: 'n1', clusterId: 'abc', now: () => new Date(0) });
      // Writes after the snapshot (a later applied batch) must not show in it.
      await db.sm.batch([
        { type: 'put', key: te.encode('i/prod/s/9999'), value: encode({ n: 9999 }) },
        { type: 'put', key: te.encode('\x00meta/applied'), value: encode({ index: 6, term: 2 }) },
        { type: 'del', key: te.encode('i/prod/s/0000') },
      ]);
      const pieces: Buffer[] = [];
      for await (const piece of backup.body) pieces.push(piece);
      expect(pieces.length).toBeGreaterThan(3);
      const decoded = decodeBackup(Buffer.concat(pieces), 'live');
      expect(decoded.header).toMatchObject({
        node: 'n1',
        clusterId: 'abc',
        revision: 3,
        applied: { index: 5, term: 2 },
        createdAt: '1970-01-01T00:00:00.000Z',
      });
      expect(decoded.header.counts).toEqual({ services: 1, instances: 3000, sessions: 0, pairs: 3004 });
      const keys = decoded.pairs.map(([k]) => new TextDecoder().decode(k));
      expect(keys).toContain('i/prod/s/0000');
      expect(keys).not.toContain('i/prod/s/9999');
      expect(keys).not.toContain('\x00meta/peers');
      await backup.close();
    } finally {
      await db.db.close();
    }
  });

  it('releases its LevelDB snapshot when the body is abandoned halfway', async () => {
    const dir = await tempDir();
    const db = await openNodeDatabase(dir);
    try {
      for (let i = 0; i < 2000; i++) await db.sm.put(te.encode(`i/a/b/${i}`), encode({ pad: 'z'.repeat(100) }));
      const backup = await openBackup(db, { node: 'n1', clusterId: null });
      for await (const _ of backup.body) break;
      await backup.close();
    } finally {
      await db.db.close();
    }
  });
});
