/**
 * The registry's start-up load reads instance records with a hand-written decoder
 * (decodeInstance) and indexes runs of one service at a time (loadInstances). Both must give
 * exactly what the general path gives (msgpackr, then the strict record checks, then
 * indexing one instance at a time), and leave every record they are not sure of to it.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../src/codec/index.js';
import type { Instance } from '../src/registry/index.js';
import { HEALTH_STATES, Registry } from '../src/registry/index.js';
import { CorruptStateError, decodeInstance, instance, newInstanceReading } from '../src/registry/persistence.js';
import { MemorySm, seed } from './registry-helpers.js';

const SEED = seed(20_261_203);

const fastOrGeneral = (key: string, bytes: Uint8Array) => {
  const fast = decodeInstance(key, bytes, newInstanceReading());
  let general: Instance | Error;
  try {
    general = instance(key, decode(bytes));
  } catch (err) {
    general = err as Error;
  }
  return { fast, general };
};

const name = fc.stringMatching(/^[a-z0-9-]{1,12}$/);
/** Strings of every kind: ASCII, non-ASCII, long enough for str8 / str16. */
const anyText = fc.oneof(
  name,
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ minLength: 40, maxLength: 300 }),
);
/** Numbers in every msgpack form the encoder writes: fixints, 8-64 bit ints, negatives, floats. */
const anyNumber = fc.oneof(
  fc.integer({ min: 0, max: 127 }),
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

const instanceArb = fc.record({
  id: name,
  namespace: name,
  service: name,
  cluster: fc.oneof(name, anyText),
  address: fc.oneof(fc.ipV4(), anyText),
  port: anyNumber,
  weight: anyNumber,
  tags: fc.array(anyText, { maxLength: 4 }),
  metadata: fc.dictionary(anyText, anyText, { maxKeys: 4 }),
  health: fc.constantFrom(...HEALTH_STATES),
  enabled: fc.boolean(),
  sessionId: fc.option(anyText, { nil: null }),
  createRevision: anyNumber,
  modRevision: anyNumber,
  version: anyNumber,
});

const keyOf = (i: { namespace: string; service: string; id: string }) => `i/${i.namespace}/${i.service}/${i.id}`;

/** Instance `id` of prod/orders as the registry writes it, every field plain; `extra` replaces fields in place. */
const plainRecord = (id: string, extra: object = {}) => ({
  id,
  namespace: 'prod',
  service: 'orders',
  cluster: 'default',
  address: '10.0.0.1',
  port: 80,
  weight: 100,
  tags: [] as string[],
  metadata: {} as Record<string, string>,
  health: 'healthy',
  enabled: true,
  sessionId: null as string | null,
  createRevision: 1,
  modRevision: 1,
  version: 1,
  ...extra,
});

describe('decodeInstance (the start-up fast path)', () => {
  it('gives what msgpackr and the record checks give, or leaves the record to them', () => {
    let fastCount = 0;
    fc.assert(
      fc.property(instanceArb, (rec) => {
        const { fast, general } = fastOrGeneral(keyOf(rec), encode(rec));
        expect(general).not.toBeInstanceOf(Error);
        if (fast === undefined) return;
        fastCount++;
        expect(fast).toStrictEqual(general);
        expect(Object.keys(fast)).toStrictEqual(Object.keys(general as Instance));
        expect(Object.isFrozen(fast) && Object.isFrozen(fast.tags) && Object.isFrozen(fast.metadata)).toBe(true);
      }),
      { seed: SEED, numRuns: 500 },
    );
    // Most generated records are plain enough for the fast path: it is being tested.
    expect(fastCount).toBeGreaterThan(100);
  });

  it('gives the same over many records read with one reading, sharing equal metadata and tags', () => {
    // Few distinct metadata maps and tag lists, so most records repeat bytes decoded before
    // (the ValueTable's hits), some of them not ASCII (always the general path).
    const metadataArb = fc.constantFrom<Record<string, string>>(
      {},
      { zone: 'a' },
      { zone: 'b', version: '1' },
      { zone: 'été' },
      { p: 'x'.repeat(300) },
      { p: `${'x'.repeat(299)}é` },
    );
    const tagsArb = fc.constantFrom<string[]>([], ['v1'], ['blue', 'v1'], ['ünï']);
    fc.assert(
      fc.property(
        fc.array(fc.record({ rec: instanceArb, metadata: metadataArb, tags: tagsArb }), { maxLength: 30 }),
        (recs) => {
          const reading = newInstanceReading();
          const seen = new Map<string, Instance>();
          for (const { rec, metadata, tags } of recs) {
            const r = { ...rec, metadata, tags };
            const key = keyOf(r);
            const bytes = encode(r);
            const fast = decodeInstance(key, bytes, reading);
            if (fast === undefined) continue;
            expect(fast).toStrictEqual(instance(key, decode(bytes)));
            expect(Object.isFrozen(fast.tags) && Object.isFrozen(fast.metadata)).toBe(true);
            const before = seen.get(JSON.stringify([metadata, tags]));
            if (before !== undefined) {
              expect(fast.metadata).toBe(before.metadata);
              expect(fast.tags).toBe(before.tags);
            }
            seen.set(JSON.stringify([metadata, tags]), fast);
          }
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('leaves metadata it refused to the general path every time, not only the first', () => {
    const reading = newInstanceReading();
    const good = plainRecord('a', { metadata: JSON.parse('{"__proto__": "v"}') as Record<string, string> });
    expect(decodeInstance(keyOf(good), encode(good), reading)).toBeUndefined();
    expect(decodeInstance(keyOf(good), encode(good), reading)).toBeUndefined();
  });

  it('leaves every doubtful record to the general path, which reports it as before', () => {
    const good = plainRecord('a', { tags: ['x'], metadata: { k: 'v' }, modRevision: 2 });
    const key = keyOf(good);
    expect(fastOrGeneral(key, encode(good)).fast).toStrictEqual(instance(key, decode(encode(good))));

    const cases: [string, string, Uint8Array][] = [
      ['an unknown field', key, encode({ ...good, extra: 1 })],
      ['a missing field', key, encode({ ...good, version: undefined })],
      ['a key that does not match', 'i/prod/orders/b', encode(good)],
      ['a key one character longer', `${key}x`, encode(good)],
      ['a bad health', key, encode({ ...good, health: 'fine' })],
      ['a number as a string', key, encode({ ...good, port: '80' })],
      ['a non-finite number', key, encode({ ...good, weight: Number.POSITIVE_INFINITY })],
      ['a tag that is not a string', key, encode({ ...good, tags: [1] })],
      ['metadata that is an array', key, encode({ ...good, metadata: ['v'] })],
      ['a metadata key __proto__', key, encode({ ...good, metadata: JSON.parse('{"__proto__": "v"}') })],
      ['a non-ASCII value', key, encode({ ...good, address: 'hôte' })],
      ['a float32', key, new Packr({ useRecords: false, useFloat32: 1 }).pack({ ...good, weight: 0.5 })],
      ['trailing bytes', key, Buffer.concat([encode(good), Buffer.from([0xc0])])],
      ['not a map', key, encode([good])],
      ['a truncated record', key, encode(good).subarray(0, 30)],
    ];
    for (const [what, k, bytes] of cases) {
      const { fast, general } = fastOrGeneral(k, bytes);
      expect(fast, what).toBeUndefined();
      if (general instanceof Error) expect(general, what).toBeInstanceOf(Error);
    }
    // A repeated field (msgpackr keeps the last value): built by hand, an encoder never writes it.
    const body = encode(good);
    expect([...body.subarray(0, 3)]).toStrictEqual([0xde, 0, 15]); // msgpackr's map16 of 15 fields
    const withCount = Buffer.concat([Buffer.from([0xde, 0, 16]), body.subarray(3), encode('id'), encode('a')]);
    const r = fastOrGeneral(key, withCount);
    expect(r.fast).toBeUndefined();
    expect(r.general).toStrictEqual(instance(key, decode(encode(good))));
  });

  it('a registry loads the records the fast path leaves over exactly as before, and refuses the corrupt ones', async () => {
    const sm = new MemorySm();
    sm.data.set('i/prod/orders/a', encode(plainRecord('a')));
    sm.data.set('i/prod/orders/b', encode(plainRecord('b', { address: 'hôte', metadata: { zone: 'été' } })));
    sm.data.set('i/prod/orders/c', encode(plainRecord('c', { cluster: 'vip', sessionId: 's1' })));
    const reg = await Registry.open(sm);
    const listed = reg.listInstances('prod', 'orders', { includeDisabled: true }).instances;
    expect(listed.map((i) => [i.cluster, i.id, i.address])).toStrictEqual([
      ['default', 'a', '10.0.0.1'],
      ['default', 'b', 'hôte'],
      ['vip', 'c', '10.0.0.1'],
    ]);
    expect(listed[1]!.metadata).toStrictEqual({ zone: 'été' });

    sm.data.set('i/prod/orders/d', encode(plainRecord('d', { health: 'fine' })));
    await expect(Registry.open(sm)).rejects.toThrow(CorruptStateError);
    await expect(Registry.open(sm)).rejects.toThrow(/i\/prod\/orders\/d.*bad health/);
  });
});
