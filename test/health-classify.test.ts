/**
 * Thresholds and classification: the level a report points to, with hysteresis. fast-check
 * runs with a fixed seed (SEED=n to explore others); a failure prints seed and replay command.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HealthReport, ReportedHealth } from '../src/health/index.js';
import {
  breachedMetrics,
  DEFAULT_THRESHOLDS,
  isWorse,
  METRICS,
  SEVERITY,
  targetHealth,
  validateThresholds,
} from '../src/health/index.js';

const SEED = Number(process.env.SEED ?? 8_2026);
const T = DEFAULT_THRESHOLDS;

function check<Ts extends [unknown, ...unknown[]]>(name: string, prop: fc.IProperty<Ts>, numRuns = 500): void {
  const out = fc.check(prop, { seed: SEED, numRuns });
  if (out.failed)
    throw new Error(
      `${name} failed (seed ${SEED}, path ${out.counterexamplePath}): ${fc.stringify(out.counterexample)}\nreplay: SEED=${SEED} npx vitest run test/health-classify.test.ts`,
    );
}

const reportArb: fc.Arbitrary<HealthReport> = fc.record(
  {
    successRatio: fc.double({ min: 0, max: 1, noNaN: true }),
    p99Ms: fc.double({ min: 0, max: 5000, noNaN: true }),
    cpu: fc.double({ min: 0, max: 1, noNaN: true }),
    memory: fc.double({ min: 0, max: 1, noNaN: true }),
    disk: fc.double({ min: 0, max: 1, noNaN: true }),
  },
  { requiredKeys: [] },
);
const stateArb = fc.constantFrom<ReportedHealth>('healthy', 'subhealthy', 'down');

describe('thresholds', () => {
  it('ship coherent defaults (exit on the healthy side of enter, down past subhealthy)', () => {
    expect(validateThresholds(T)).toBeNull();
  });

  it('refuse an exit on the unhealthy side of its enter, naming the band', () => {
    const bad = { ...T, cpu: { subhealthy: { enter: 0.8, exit: 0.9 } } };
    expect(validateThresholds(bad)?.field).toBe('thresholds.cpu.subhealthy');
    const inverted = { ...T, successRatio: { subhealthy: { enter: 0.5, exit: 0.6 }, down: { enter: 0.7, exit: 0.8 } } };
    expect(validateThresholds(inverted)?.field).toBe('thresholds.successRatio.down');
  });

  it('know which way is worse for each metric', () => {
    expect(isWorse('successRatio', 0.8, 0.9)).toBe(true);
    expect(isWorse('p99Ms', 1200, 1000)).toBe(true);
    expect(isWorse('cpu', 0.9, 0.9)).toBe(false); // strict: the limit itself is fine
  });
});

describe('targetHealth', () => {
  const cases: [string, ReportedHealth, HealthReport, ReportedHealth][] = [
    ['an empty report changes nothing for a healthy instance', 'healthy', {}, 'healthy'],
    ['successRatio below 0.9 enters subhealthy', 'healthy', { successRatio: 0.89 }, 'subhealthy'],
    ['successRatio exactly 0.9 stays healthy', 'healthy', { successRatio: 0.9 }, 'healthy'],
    ['p99 above 1000 ms enters subhealthy', 'healthy', { p99Ms: 1001 }, 'subhealthy'],
    ['cpu above 0.9 enters subhealthy', 'healthy', { cpu: 0.95 }, 'subhealthy'],
    ['successRatio below 0.5 goes straight to down', 'healthy', { successRatio: 0.3 }, 'down'],
    [
      'subhealthy stays while successRatio is between enter and exit',
      'subhealthy',
      { successRatio: 0.93 },
      'subhealthy',
    ],
    ['subhealthy leaves at successRatio 0.95', 'subhealthy', { successRatio: 0.95 }, 'healthy'],
    [
      'subhealthy stays while cpu is above its exit (0.8)',
      'subhealthy',
      { successRatio: 0.99, cpu: 0.85 },
      'subhealthy',
    ],
    ['down stays while successRatio is below its exit (0.7)', 'down', { successRatio: 0.6 }, 'down'],
    ['down recovers to subhealthy between down exit and subhealthy exit', 'down', { successRatio: 0.8 }, 'subhealthy'],
    [
      'down recovers to healthy when every metric is past its exit',
      'down',
      { successRatio: 0.99, p99Ms: 100 },
      'healthy',
    ],
    ['the worst metric wins', 'healthy', { successRatio: 0.99, p99Ms: 100, disk: 0.97 }, 'subhealthy'],
  ];
  for (const [name, current, report, want] of cases)
    it(name, () => expect(targetHealth(current, report, T)).toBe(want));

  it('names the metrics past their subhealthy enter', () => {
    expect(breachedMetrics({ successRatio: 0.5, p99Ms: 10, cpu: 0.99 }, T)).toEqual(['successRatio', 'cpu']);
  });

  it('is monotonic: a report worse in every metric never points to a better level', () => {
    check(
      'monotonic',
      fc.property(stateArb, reportArb, fc.double({ min: 0, max: 1, noNaN: true }), (state, report, k) => {
        const worse: Record<string, number> = {};
        for (const m of METRICS) {
          const v = report[m];
          if (v === undefined) continue;
          // Move each value toward its bad end by a fraction k.
          worse[m] = m === 'successRatio' ? v * (1 - k) : m === 'p99Ms' ? v + k * 5000 : v + (1 - v) * k;
        }
        return SEVERITY[targetHealth(state, worse, T)] >= SEVERITY[targetHealth(state, report, T)];
      }),
    );
  });

  it('has hysteresis: inside every band gap the current state is kept', () => {
    check(
      'hysteresis',
      fc.property(fc.constantFrom(...METRICS), fc.double({ min: 0, max: 1, noNaN: true }), (metric, f) => {
        const band = T[metric].subhealthy!;
        const value = band.exit + (band.enter - band.exit) * f; // between exit and enter, both included
        // A value exactly on exit releases (exit is not worse than itself): skip that point.
        if (value === band.exit) return true;
        const down = T[metric].down;
        if (down !== undefined && isWorse(metric, value, down.exit)) return true; // would hold down
        return (
          targetHealth('healthy', { [metric]: value }, T) === 'healthy' &&
          targetHealth('subhealthy', { [metric]: value }, T) === 'subhealthy'
        );
      }),
    );
  });
});
