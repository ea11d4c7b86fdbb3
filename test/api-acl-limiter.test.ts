/** The failed-authentication limiter (src/server/acl.ts): per address, per fixed window, bounded table. */
import { describe, expect, it } from 'vitest';
import { FailedAuthLimiter } from '../src/server/acl.js';

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
