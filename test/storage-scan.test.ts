/**
 * scanBatches: every record once, in batches, the iterator always closed, and a read
 * failure reported as itself even when closing fails after it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openNodeDatabase, type Scannable, scanBatches } from '../src/storage/index.js';

function fakeLevel(
  records: number,
  failAt: number | null = null,
): Scannable<number, string> & { closed: number; asked: unknown[] } {
  const level = {
    closed: 0,
    asked: [] as unknown[],
    iterator(options: unknown) {
      level.asked.push(options);
      let at = 0;
      return {
        async nextv(size: number) {
          if (failAt !== null && at >= failAt) throw new Error('disk read failed');
          const out: Array<[number, string]> = [];
          for (; out.length < size && at < records; at++) out.push([at, `v${at}`]);
          return out;
        },
        async close() {
          level.closed++;
          if (failAt !== null) throw new Error('close failed too');
        },
      };
    },
  };
  return level;
}

const collect = async (it: AsyncIterable<Array<[number, string]>>) => {
  const sizes: number[] = [];
  const keys: number[] = [];
  for await (const batch of it) {
    sizes.push(batch.length);
    for (const [k] of batch) keys.push(k);
  }
  return { sizes, keys };
};

describe('scanBatches', () => {
  it('yields every record once, in batches, asks for room for a whole batch, and closes the iterator', async () => {
    const level = fakeLevel(25);
    const { sizes, keys } = await collect(scanBatches(level, 10));
    expect(sizes).toEqual([10, 10, 5]);
    expect(keys).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(level.asked).toEqual([{ keys: true, values: true, highWaterMarkBytes: 10 * 1024 }]);
    expect(level.closed).toBe(1);
  });

  it('closes the iterator when the reader stops early', async () => {
    const level = fakeLevel(25);
    for await (const batch of scanBatches(level, 10)) if (batch.length > 0) break;
    expect(level.closed).toBe(1);
  });

  it('reports the read failure, not the failure to close after it', async () => {
    const level = fakeLevel(25, 10);
    await expect(collect(scanBatches(level, 10))).rejects.toThrow('disk read failed');
    expect(level.closed).toBe(1);
  });

  it("keyEncoding 'utf8': the state machine's keys as strings, the same as decoding its byte keys", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rollcall-scan-'));
    const db = await openNodeDatabase(dir);
    try {
      const enc = new TextEncoder();
      const keys = ['\x00meta/applied', 'i/prod/orders/a', 'i/prod/café/é', 'i/prod/orders/日本', 'v/prod/orders'];
      await db.sm.batch(keys.map((k, n) => ({ type: 'put', key: enc.encode(k), value: Uint8Array.of(n) })));
      // A key that is not UTF-8 comes out as TextDecoder gives it.
      await db.sm.put(Uint8Array.of(0x78, 0xff, 0x2f), Uint8Array.of(9));
      const dec = new TextDecoder();
      const asBytes: [string, number][] = [];
      for await (const batch of scanBatches<Uint8Array, Uint8Array>(db.sm, 2))
        for (const [k, v] of batch) asBytes.push([dec.decode(k), v[0]!]);
      const asStrings: [string, number][] = [];
      for await (const batch of scanBatches<string, Uint8Array>(db.sm, 2, 'utf8'))
        for (const [k, v] of batch) asStrings.push([k, v[0]!]);
      expect(asStrings).toEqual(asBytes);
      expect(asStrings.map(([k]) => k).sort()).toEqual([...keys, 'x\ufffd/'].sort());
    } finally {
      await db.db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
