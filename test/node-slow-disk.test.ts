import { describe, expect, it } from 'vitest';
import { SlowDiskReporter } from '../src/node/slow-disk.js';

describe('SlowDiskReporter', () => {
  it('reports the first slow write at once, then at most once per interval with the count and the slowest', () => {
    const r = new SlowDiskReporter({ slowMs: 500, reportEveryMs: 10_000, recentMs: 30_000 });
    expect(r.observe(20, 0)).toBeNull(); // fast: nothing
    expect(r.observe(800, 1_000)).toEqual({ count: 1, maxMs: 800, lastMs: 800 });
    expect(r.observe(1_500, 2_000)).toBeNull();
    expect(r.observe(600, 3_000)).toBeNull();
    expect(r.observe(700, 11_000)).toEqual({ count: 3, maxMs: 1_500, lastMs: 700 });
    expect(r.observe(900, 12_000)).toBeNull();
    expect(r.recentMaxMs(12_000)).toBe(1_500);
    expect(r.recentMaxMs(32_001)).toBe(900); // the 1.5 s write (t=2 s) has aged out
    expect(r.recentMaxMs(50_000)).toBe(0);
  });
});
