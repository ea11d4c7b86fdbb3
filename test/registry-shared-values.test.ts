/**
 * Instances hold one frozen copy of each metadata map and tag list many of them share
 * (src/registry/shared-values.ts on writes, persistence's ValueTable on load): memory per
 * instance, issue 21. Sharing must be invisible: every instance reads as before, and a
 * restart loads the same state.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Registry } from '../src/registry/index.js';
import { sharedMetadata, sharedTags } from '../src/registry/shared-values.js';
import { inst, Log, ok } from './registry-helpers.js';

const zone = (z: string) => ({ metadata: { version: '1.4.2', zone: z }, tags: ['blue', 'v1'] });

describe('shared metadata and tags', () => {
  it('instances written with equal metadata and tags hold one frozen copy of each', async () => {
    const log = await Log.open();
    // a, b and c alternate, so a repeat is found both right after itself and after another value.
    for (const [id, z] of [
      ['a', 'z1'],
      ['b', 'z2'],
      ['c', 'z1'],
      ['d', 'z1'],
    ] as const)
      ok(log.apply(inst(id, zone(z))).result);
    const get = (id: string) => log.registry.getInstance('prod', 'orders', id)!;
    expect(get('a').metadata).toStrictEqual({ version: '1.4.2', zone: 'z1' });
    expect(get('b').metadata).toStrictEqual({ version: '1.4.2', zone: 'z2' });
    expect(get('c').metadata).toBe(get('a').metadata);
    expect(get('d').metadata).toBe(get('a').metadata);
    expect(get('b').metadata).not.toBe(get('a').metadata);
    expect(get('c').tags).toBe(get('a').tags);
    expect(get('b').tags).toBe(get('a').tags);
    expect(Object.isFrozen(get('a').metadata) && Object.isFrozen(get('a').tags)).toBe(true);

    // A change to one replaces its copy and leaves the others as they were.
    ok(
      log.apply({
        type: 'update',
        namespace: 'prod',
        service: 'orders',
        id: 'c',
        expectedVersion: 1,
        patch: { metadata: { zone: 'z3' } },
      }).result,
    );
    expect(get('c').metadata).toStrictEqual({ zone: 'z3' });
    expect(get('a').metadata).toStrictEqual({ version: '1.4.2', zone: 'z1' });
    expect(get('d').metadata).toBe(get('a').metadata);
  });

  it('stays correct past the bound of the cache, and a restart loads the same state, shared again', async () => {
    const log = await Log.open();
    // More distinct values than the cache keeps (4096), then the first ones again.
    for (let n = 0; n < 5000; n++) ok(log.apply(inst(`i${n}`, zone(`z${n}`))).result);
    for (let n = 0; n < 50; n++) ok(log.apply(inst(`j${n}`, zone(`z${n % 5}`))).result);
    for (let n = 0; n < 5000; n += 499)
      expect(log.registry.getInstance('prod', 'orders', `i${n}`)!.metadata).toStrictEqual({
        version: '1.4.2',
        zone: `z${n}`,
      });
    const j = (n: number) => log.registry.getInstance('prod', 'orders', `j${n}`)!;
    expect(j(5).metadata).toBe(j(0).metadata);
    expect(j(0).metadata).toStrictEqual({ version: '1.4.2', zone: 'z0' });

    const reopened = await Registry.open(log.sm);
    expect(reopened.dump()).toStrictEqual(log.registry.dump());
    const loaded = (id: string) => reopened.getInstance('prod', 'orders', id)!;
    expect(loaded('j5').metadata).toBe(loaded('j0').metadata);
    expect(loaded('j1').metadata).not.toBe(loaded('j0').metadata);
    expect(loaded('j7').tags).toBe(loaded('i0').tags);
  });

  afterEach(() => vi.restoreAllMocks());

  it('gives a value too long to keep no JSON key (a write of 256 KB of metadata encodes nothing more)', () => {
    // The validator's largest metadata: 64 values of 4 KiB. Its JSON, 256 KB, could never be
    // kept (keys are at most 1,024 characters), so encoding it on every write is waste.
    const big: Record<string, string> = {};
    for (let k = 0; k < 64; k++) big[`k${k}`] = 'x'.repeat(4096);
    const bigTags = Object.freeze(Array.from({ length: 64 }, (_, k) => `${k}`.padEnd(128, 't')));
    const stringify = vi.spyOn(JSON, 'stringify');
    sharedMetadata(Object.freeze({ zone: 'before' }));
    sharedTags(Object.freeze(['before']));
    expect(sharedMetadata(Object.freeze(big))).toStrictEqual(big);
    expect(sharedTags(bigTags)).toBe(bigTags);
    expect(stringify).toHaveBeenCalledTimes(2);
    // Just short enough: still kept, so an equal one later shares it.
    const near = Object.freeze({ a: 'y'.repeat(1016) });
    expect(JSON.stringify(near).length).toBe(1024);
    const kept = sharedMetadata(near);
    sharedMetadata(Object.freeze({ zone: 'between' }));
    expect(sharedMetadata(Object.freeze({ a: 'y'.repeat(1016) }))).toBe(kept);
  });
});
