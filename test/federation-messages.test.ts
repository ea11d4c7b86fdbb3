/**
 * The federation wire format (src/federation/messages.ts): what a peer sends is checked before
 * it can touch the table. Here: a datacenter description's version index is bounded, so a
 * forged one near 2^53 cannot make the next stamp an unsafe integer and wedge gossip.
 */
import { describe, expect, it } from 'vitest';
import { MAX_VERSION_INDEX, parseMessage } from '../src/federation/messages.js';

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
