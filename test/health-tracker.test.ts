/**
 * The leader's HealthTracker: reports become transitions only when confirmed, recovery waits
 * out the dwell, each transition is proposed once (again only if it does not apply), and the
 * registry's health is where a new leader starts. fast-check checks that no report sequence
 * makes an instance flap faster than the dwell allows (fixed seed; SEED=n to explore).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HealthReport, HealthThresholds, HealthView } from '../src/health/index.js';
import { DEFAULT_THRESHOLDS, HealthTracker, healthCommands } from '../src/health/index.js';

const SEED = Number(process.env.SEED ?? 8_2026);
const REF = { namespace: 'prod', service: 'orders', id: 'o1' };
const BAD: HealthReport = { successRatio: 0.8 };
const GOOD: HealthReport = { successRatio: 0.99 };
const T: HealthThresholds = {
  ...DEFAULT_THRESHOLDS,
  degradeAfter: 2,
  recoverAfter: 3,
  minDwellMs: 10_000,
  reportTtlMs: 60_000,
};

/** A registry of one-field instances; `apply` plays the leader's setHealth being applied. */
class Registry implements HealthView {
  readonly health = new Map<string, string>([['prod/orders/o1', 'healthy']]);
  getInstance(ns: string, svc: string, id: string) {
    const h = this.health.get(`${ns}/${svc}/${id}`);
    return h === undefined ? undefined : { health: h };
  }
  apply(ts: readonly { namespace: string; service: string; id: string; to: string }[]): void {
    for (const t of ts) this.health.set(`${t.namespace}/${t.service}/${t.id}`, t.to);
  }
  get(): string {
    return this.health.get('prod/orders/o1')!;
  }
}

function setup(t: HealthThresholds = T) {
  const reg = new Registry();
  const tracker = new HealthTracker({ thresholds: () => t, reproposeMs: 1000 });
  const report = (r: HealthReport, now: number) => tracker.report(REF, r, now, reg.get());
  return { reg, tracker, report };
}

describe('HealthTracker', () => {
  it('turns subhealthy after degradeAfter bad reports, and proposes that once', () => {
    const { reg, tracker, report } = setup();
    expect(report(BAD, 0)).toBe('healthy');
    expect(tracker.get(REF)?.pending).toEqual({ to: 'subhealthy', count: 1 });
    expect(tracker.due(0, reg)).toEqual([]);
    expect(report(BAD, 100)).toBe('subhealthy');
    const due = tracker.due(100, reg);
    expect(due).toEqual([{ ...REF, from: 'healthy', to: 'subhealthy' }]);
    expect(healthCommands(due, 7)).toEqual([{ type: 'setHealth', term: 7, ...REF, health: 'subhealthy' }]);
    // In flight: not proposed again until reproposeMs, nor once applied.
    expect(tracker.due(500, reg)).toEqual([]);
    reg.apply(due);
    expect(tracker.due(5000, reg)).toEqual([]);
  });

  it('proposes again when a proposal did not apply within reproposeMs', () => {
    const { reg, tracker, report } = setup();
    report(BAD, 0);
    report(BAD, 1);
    expect(tracker.due(1, reg)).toHaveLength(1);
    expect(tracker.due(900, reg)).toHaveLength(0);
    expect(tracker.due(1001, reg)).toHaveLength(1);
  });

  it('a single bad report in a stream of good ones changes nothing (degradeAfter)', () => {
    const { reg, tracker, report } = setup();
    report(GOOD, 0);
    report(BAD, 100);
    report(GOOD, 200);
    report(BAD, 300);
    expect(tracker.due(300, reg)).toEqual([]);
    expect(reg.get()).toBe('healthy');
  });

  it('recovers only after recoverAfter good reports and the minimum dwell', () => {
    const { reg, tracker, report } = setup();
    report(BAD, 0);
    report(BAD, 0);
    reg.apply(tracker.due(0, reg));
    for (let t = 1000; t <= 9000; t += 1000) report(GOOD, t);
    expect(tracker.get(REF)?.state).toBe('subhealthy'); // confirmed long ago, but within the dwell
    expect(report(GOOD, 10_000)).toBe('healthy');
    expect(tracker.due(10_000, reg)).toEqual([{ ...REF, from: 'subhealthy', to: 'healthy' }]);
  });

  it('keeps the state while values sit between enter and exit (hysteresis)', () => {
    const { reg, tracker, report } = setup();
    report(BAD, 0);
    report(BAD, 0);
    reg.apply(tracker.due(0, reg));
    for (let t = 0; t <= 60_000; t += 1000) report({ successRatio: 0.93 }, t);
    expect(tracker.get(REF)?.state).toBe('subhealthy');
    expect(tracker.due(60_000, reg)).toEqual([]);
  });

  it('lets a stale report lapse: back to healthy after the report TTL and the dwell', () => {
    const { reg, tracker, report } = setup();
    report(BAD, 0);
    report(BAD, 0);
    reg.apply(tracker.due(0, reg));
    expect(tracker.due(59_000, reg)).toEqual([]);
    expect(tracker.due(60_001, reg)).toEqual([{ ...REF, from: 'subhealthy', to: 'healthy' }]);
    expect(tracker.get(REF)?.report).toEqual({});
  });

  it('leaves suspect instances to expiry protection', () => {
    const { reg, tracker, report } = setup();
    reg.health.set('prod/orders/o1', 'suspect');
    report(BAD, 0);
    report(BAD, 1);
    expect(tracker.due(1, reg)).toEqual([]);
  });

  it("starts from the registry's health (a new leader) and forgets removed instances", () => {
    const { reg, tracker, report } = setup();
    reg.health.set('prod/orders/o1', 'subhealthy');
    expect(report(GOOD, 0)).toBe('subhealthy');
    expect(tracker.due(0, reg)).toEqual([]);
    reg.health.delete('prod/orders/o1');
    tracker.due(1, reg);
    expect(tracker.size).toBe(0);
  });

  it('reset() forgets everything (on gaining or losing leadership)', () => {
    const { tracker, report } = setup();
    report(BAD, 0);
    tracker.reset();
    expect(tracker.list()).toEqual([]);
  });

  it('never flaps: at most one improvement per dwell, whatever the reports', () => {
    const stepArb = fc.record({
      gap: fc.integer({ min: 0, max: 3000 }),
      ratio: fc.double({ min: 0, max: 1, noNaN: true }),
    });
    const out = fc.check(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 200 }), (steps) => {
        const { reg, tracker, report } = setup();
        let now = 0;
        const improvements: number[] = [];
        const severity: Record<string, number> = { healthy: 0, subhealthy: 1, down: 2 };
        for (const s of steps) {
          now += s.gap;
          report({ successRatio: s.ratio }, now);
          for (const t of tracker.due(now, reg)) {
            if (severity[t.to]! < severity[t.from]!) improvements.push(now);
            // Whatever is proposed differs from what the registry shows.
            if (t.to === t.from) return false;
            reg.apply([t]);
          }
        }
        for (let i = 1; i < improvements.length; i++)
          if (improvements[i]! - improvements[i - 1]! < T.minDwellMs) return false;
        return true;
      }),
      { seed: SEED, numRuns: 300 },
    );
    if (out.failed)
      throw new Error(
        `flapping (seed ${SEED}, path ${out.counterexamplePath}): ${fc.stringify(out.counterexample)}\nreplay: SEED=${SEED} npx vitest run test/health-tracker.test.ts`,
      );
  });
});
