/**
 * The federation wire format (src/federation/messages.ts): what a peer sends is checked before
 * it can touch the table. Here: a datacenter description's version index is bounded, so a
 * forged one near 2^53 cannot make the next stamp an unsafe integer and wedge gossip.
 */
import { describe, expect, it } from 'vitest';
import { makeDescriptor } from '../src/federation/merge.js';
import { encodeEntry, MAX_VERSION_INDEX, parseMessage } from '../src/federation/messages.js';
import { DatacenterTable, entryHash } from '../src/federation/table.js';

const entry = (index: number) => ({
  n: 'dc-b',
  t: 3,
  i: index,
  l: 'n1',
  r: 10,
  m: [['n1', 'http://127.0.0.1:9001', 0, 1, 0]],
});

describe('federation messages', () => {
  it('takes a description stamped at any real clock reading', () => {
    for (const index of [0, Date.now(), MAX_VERSION_INDEX]) {
      const m = parseMessage({ t: 'sync-push', e: [entry(index)] });
      expect(m?.kind).toBe('sync-push');
      if (m?.kind === 'sync-push') expect(m.entries[0]!.descriptor.version.index).toBe(index);
    }
  });

  it('refuses a version index no clock can reach (up to 2^53 - 1)', () => {
    for (const index of [MAX_VERSION_INDEX + 1, Number.MAX_SAFE_INTEGER]) {
      expect(parseMessage({ t: 'sync-push', e: [entry(index)] })).toBeNull();
    }
  });
});

describe("a description's origin on the wire (issue 18)", () => {
  const members = [{ id: 'n1', address: 'http://127.0.0.1:9001', role: 'voter' as const }];
  const origin = { cluster: 'cid-0002', publisher: { id: 'n1', boot: 1_767_225_600_000 } };

  it('travels as the optional keys c and p, and comes back', () => {
    const descriptor = makeDescriptor({ term: 3, index: 5 }, 'n1', members, origin);
    const e = encodeEntry({ name: 'dc-b', descriptor, revision: 10, liveness: new Map() }) as Record<string, unknown>;
    // Builds before it read n, t, i, l, r and m only, and ignore the rest.
    expect(e).toMatchObject({ n: 'dc-b', t: 3, i: 5, l: 'n1', r: 10, c: 'cid-0002', p: ['n1', 1_767_225_600_000] });
    const m = parseMessage({ t: 'sync-push', e: [e] });
    expect(m?.kind === 'sync-push' && m.entries[0]!.descriptor).toMatchObject(origin);
    // A cluster without an id says so (null), which is not the same as not saying (an older build).
    const none = parseMessage({ t: 'sync-push', e: [{ ...entry(5), c: null }] });
    expect(none?.kind === 'sync-push' && none.entries[0]!.descriptor.cluster).toBeNull();
    const unsaid = parseMessage({ t: 'sync-push', e: [entry(5)] });
    expect(unsaid?.kind === 'sync-push' && 'cluster' in unsaid.entries[0]!.descriptor).toBe(false);
  });

  it('refuses an origin out of shape', () => {
    for (const bad of [{ c: '' }, { c: 'has space' }, { c: 7 }, { p: ['n1'] }, { p: ['n1', -1] }, { p: [1, 2] }])
      expect(parseMessage({ t: 'sync-push', e: [{ ...entry(5), ...bad }] }), JSON.stringify(bad)).toBeNull();
  });

  it('changes no hash: digests of builds with and without it agree', () => {
    const table = new DatacenterTable();
    const hashOf = (descriptor: ReturnType<typeof makeDescriptor>) => {
      const r = table.ensure(`dc-${table.size()}`);
      table.setDescriptor(r, descriptor);
      return entryHash(r);
    };
    expect(hashOf(makeDescriptor({ term: 3, index: 5 }, 'n1', members, origin))).toBe(
      hashOf(makeDescriptor({ term: 3, index: 5 }, 'n1', members)),
    );
  });
});
