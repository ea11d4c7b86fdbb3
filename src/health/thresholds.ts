/**
 * When reports make an instance subhealthy or down, and when they let it back.
 *
 * Each metric has up to two bands, one per unhealthy level. A band has an `enter` value
 * (crossing it moves the instance to that level) and an `exit` value (it must come back
 * past this to leave the level again): the gap between them is the hysteresis.
 *
 *   successRatio (lower is worse):  healthy ──< 0.90──▶ subhealthy ──≥ 0.95──▶ healthy
 *   p99Ms        (higher is worse): healthy ──> 1000──▶ subhealthy ──≤ 800───▶ healthy
 *
 * Invariant (checked by validateThresholds): for every band, `exit` is on the healthy side
 * of `enter` (or equal: no hysteresis), and a `down` band's `enter` is on the unhealthy
 * side of the same metric's `subhealthy` `enter`.
 */
import type { Metric } from './report.js';
import { METRICS } from './report.js';

export interface Band {
  readonly enter: number;
  readonly exit: number;
}

export interface MetricBands {
  readonly subhealthy?: Band;
  readonly down?: Band;
}

export interface HealthThresholds {
  readonly successRatio: MetricBands;
  readonly p99Ms: MetricBands;
  readonly cpu: MetricBands;
  readonly memory: MetricBands;
  readonly disk: MetricBands;
  /** Consecutive reports that must agree before the health gets worse. */
  readonly degradeAfter: number;
  /** Consecutive reports that must agree before it gets better. */
  readonly recoverAfter: number;
  /** Least time (ms) an instance stays in a state before it may get better: no flapping. */
  readonly minDwellMs: number;
  /** A report older than this (ms) no longer counts; with no fresh report an instance returns to healthy. */
  readonly reportTtlMs: number;
}

/** Which way is worse for each metric. */
export const LOWER_IS_WORSE: Readonly<Record<Metric, boolean>> = {
  successRatio: true,
  p99Ms: false,
  cpu: false,
  memory: false,
  disk: false,
};

export const DEFAULT_THRESHOLDS: HealthThresholds = Object.freeze({
  successRatio: { subhealthy: { enter: 0.9, exit: 0.95 }, down: { enter: 0.5, exit: 0.7 } },
  p99Ms: { subhealthy: { enter: 1000, exit: 800 } },
  cpu: { subhealthy: { enter: 0.9, exit: 0.8 } },
  memory: { subhealthy: { enter: 0.9, exit: 0.85 } },
  disk: { subhealthy: { enter: 0.95, exit: 0.9 } },
  degradeAfter: 2,
  recoverAfter: 3,
  minDwellMs: 15_000,
  reportTtlMs: 60_000,
});

/** True when `value` is on the unhealthy side of `limit` for this metric (strictly). */
export function isWorse(metric: Metric, value: number, limit: number): boolean {
  return LOWER_IS_WORSE[metric] ? value < limit : value > limit;
}

/** null when the thresholds are coherent, else the offending field and why. */
export function validateThresholds(
  t: HealthThresholds,
  path = 'thresholds',
): { field: string; message: string } | null {
  for (const m of METRICS) {
    const bands = t[m];
    for (const level of ['subhealthy', 'down'] as const) {
      const b = bands[level];
      if (b === undefined) continue;
      const field = `${path}.${m}.${level}`;
      if (isWorse(m, b.exit, b.enter))
        return { field, message: `${field}: exit (${b.exit}) must be on the healthy side of enter (${b.enter})` };
    }
    const sub = bands.subhealthy;
    const down = bands.down;
    if (sub !== undefined && down !== undefined && !isWorse(m, down.enter, sub.enter)) {
      return {
        field: `${path}.${m}.down`,
        message: `${path}.${m}.down: enter (${down.enter}) must be worse than subhealthy enter (${sub.enter})`,
      };
    }
  }
  for (const k of ['degradeAfter', 'recoverAfter'] as const) {
    if (!Number.isInteger(t[k]) || t[k] < 1 || t[k] > 100)
      return { field: `${path}.${k}`, message: `${path}.${k}: must be an integer from 1 to 100` };
  }
  for (const k of ['minDwellMs', 'reportTtlMs'] as const) {
    if (!Number.isInteger(t[k]) || t[k] < 0 || t[k] > 86_400_000)
      return { field: `${path}.${k}`, message: `${path}.${k}: must be an integer from 0 to 86400000 (ms)` };
  }
  return null;
}
