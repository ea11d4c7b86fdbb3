/** src/server/acl.ts alone: the failed-authentication limiter, and token lookup that waits for a read barrier on a miss. */
import { describe, expect, it } from 'vitest';
import type { AclToken } from '../src/registry/index.js';
import { AccessControl, type AclNode, FailedAuthLimiter, newTokenSecret } from '../src/server/acl.js';

describe('FailedAuthLimiter', () => {
  it('blocks an address past the limit until its window ends, and no other address', () => {
    let now = 1_000_000;
    const l = new FailedAuthLimiter(3, 60_000, () => now);
    for (let i = 0; i < 3; i++) {
      expect(l.blockedFor('10.0.0.1')).toBe(0);
      l.fail('10.0.0.1');
    }
    expect(l.blockedFor('10.0.0.1')).toBe(60);
    expect(l.blockedFor('10.0.0.2')).toBe(0);
    now += 59_500;
    expect(l.blockedFor('10.0.0.1')).toBe(1);
    now += 500;
    expect(l.blockedFor('10.0.0.1')).toBe(0);
    l.fail('10.0.0.1');
    expect(l.blockedFor('10.0.0.1')).toBe(0);
  });

  it('0 is no limit; the table stays bounded under an address flood', () => {
    const off = new FailedAuthLimiter(0);
    for (let i = 0; i < 100; i++) off.fail('a');
    expect(off.blockedFor('a')).toBe(0);
    const now = 5;
    const l = new FailedAuthLimiter(1, 60_000, () => now, 10);
    for (let i = 0; i < 100; i++) l.fail(`10.0.${i}.1`);
    // The newest addresses are still counted.
    expect(l.blockedFor('10.0.99.1')).toBeGreaterThan(0);
    let counted = 0;
    for (let i = 0; i < 100; i++) if (l.blockedFor(`10.0.${i}.1`) > 0) counted++;
    expect(counted).toBeLessThanOrEqual(10);
  });
});

describe('AccessControl.identify', () => {
  const token = (secretHash: string): AclToken => ({
    id: 't1',
    name: 'late',
    role: 'read',
    namespaces: null,
    servicePrefixes: null,
    secretHash,
    createRevision: 7,
  });

  it('a token this node has not applied yet is looked up again after a read barrier, not refused', async () => {
    const { secret, secretHash } = newTokenSecret();
    let applied: AclToken | undefined;
    let barriers = 0;
    const node = {
      registry: {
        aclBootstrapped: () => true,
        tokenByHash: (h: string) => (applied?.secretHash === h ? applied : undefined),
      },
      readBarrier: async () => {
        barriers++;
        applied = token(secretHash); // the create, committed elsewhere, is applied by the time the barrier returns
        return 0;
      },
    } as unknown as AclNode;
    const access = new AccessControl(null, { node, timeoutMs: 100 });
    expect(await access.identify(secret)).toEqual({
      ok: true,
      principal: { name: 'late', role: 'read', namespaces: null, servicePrefixes: null, tokenId: 't1' },
    });
    expect(barriers).toBe(1);
    // Known now: no second barrier.
    expect((await access.identify(secret)).ok).toBe(true);
    expect(barriers).toBe(1);
    expect(await access.identify('rc_unknown')).toEqual({ ok: false, reason: 'unknown' });
    expect(barriers).toBe(2);
  });

  it('a barrier that fails is "unavailable", not a refusal', async () => {
    const node = {
      registry: { aclBootstrapped: () => true, tokenByHash: () => undefined },
      readBarrier: async () => Promise.reject(new Error('no leader')),
    } as unknown as AclNode;
    const id = await new AccessControl(null, { node, timeoutMs: 100 }).identify('rc_x');
    expect(id).toMatchObject({ ok: false, reason: 'unavailable' });
  });
});
