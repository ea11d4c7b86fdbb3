/**
 * The per-key rate limit for repeated log lines (issue 22, item 7), on a fake clock: one
 * full line, then one summary with a count per interval while the repeats go on; counts
 * always add up; quiet keys are forgotten; keys are bounded.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OTHER_KEYS, RepeatLimiter, type RepeatSummary } from '../src/log/repeat-limiter.js';

afterEach(() => {
  vi.useRealTimers();
});

/** A limiter on vitest's fake clock (Date.now moves with the fake timers). */
function limiter(maxKeys?: number) {
  const lines: Array<{ full: string } | RepeatSummary<string>> = [];
  const l = new RepeatLimiter<string>({
    intervalMs: 10_000,
    now: () => Date.now(),
    ...(maxKeys === undefined ? {} : { maxKeys }),
    onSummary: (s) => lines.push(s),
  });
  return {
    l,
    lines,
    hit(key: string) {
      if (l.admit(key, `ctx:${key}`)) lines.push({ full: key });
    },
    advance(ms: number) {
      vi.advanceTimersByTime(ms);
    },
  };
}

const counted = (lines: ReadonlyArray<{ full: string } | RepeatSummary<string>>) =>
  lines.reduce((n, line) => n + ('full' in line ? 1 : line.count), 0);

describe('RepeatLimiter', () => {
  it('turns 14,000 repeats in 25 s into one full line and a count per 10 s', () => {
    vi.useFakeTimers();
    const t = limiter();
    for (let i = 0; i < 14_000; i++) {
      t.hit('AUTH_FAILED 127.0.0.1');
      t.advance(25_000 / 14_000);
    }
    // The flood stopped: the timer reports the rest without waiting for another repeat.
    t.advance(10_000);
    expect(t.lines).toHaveLength(4);
    expect(t.lines[0]).toEqual({ full: 'AUTH_FAILED 127.0.0.1' });
    for (const s of t.lines.slice(1) as RepeatSummary<string>[]) {
      expect(s).toMatchObject({ key: 'AUTH_FAILED 127.0.0.1', context: 'ctx:AUTH_FAILED 127.0.0.1' });
      expect(s.periodMs).toBeGreaterThanOrEqual(5_000);
      expect(s.periodMs).toBeLessThanOrEqual(10_000 + 2);
    }
    expect(counted(t.lines)).toBe(14_000);
    // Quiet for a whole interval after its last summary: forgotten.
    t.advance(10_000);
    expect(t.l.size).toBe(0);
    t.l.close();
  });

  it('logs a key in full again once it was quiet for a whole interval, and other keys in full at once', () => {
    vi.useFakeTimers();
    const t = limiter();
    t.hit('a');
    t.hit('a');
    t.hit('b');
    t.advance(10_000); // a's count is reported; b was quiet
    t.advance(10_000); // a quiet since: forgotten
    t.hit('a');
    expect(t.lines).toEqual([
      { full: 'a' },
      { full: 'b' },
      expect.objectContaining({ key: 'a', count: 1 }),
      { full: 'a' },
    ]);
    t.l.close();
  });

  it('holds at most maxKeys keys however many sources there are, and loses no count', () => {
    vi.useFakeTimers();
    const t = limiter(100);
    for (let i = 0; i < 5_000; i++) t.hit(`AUTH_FAILED 10.0.${i >> 8}.${i & 255}`);
    expect(t.l.size).toBe(101);
    expect(t.lines.filter((l) => 'full' in l)).toHaveLength(101);
    t.l.close();
    expect(t.lines.at(-1)).toMatchObject({ key: OTHER_KEYS, count: 4_899, context: 'ctx:AUTH_FAILED 10.0.0.100' });
    expect(counted(t.lines)).toBe(5_000);
  });

  it('reports what it counted when closed, and counts nothing afterwards', () => {
    vi.useFakeTimers();
    const t = limiter();
    t.hit('a');
    t.hit('a');
    t.hit('a');
    t.l.close();
    expect(t.lines).toEqual([{ full: 'a' }, expect.objectContaining({ key: 'a', count: 2 })]);
    t.hit('a');
    expect(t.lines.at(-1)).toEqual({ full: 'a' });
    expect(t.l.size).toBe(0);
  });
});
