/**
 * The level a report points to, given where the instance is now. Pure.
 *
 * For each metric present and each band: an instance already at (or past) the band's level
 * stays there while the value is worse than `exit`; one below it enters when the value is
 * worse than `enter`. The answer is the worst level any metric holds. Because the exit
 * test is the looser one, a value between `enter` and `exit` keeps whatever state the
 * instance has: that is the hysteresis.
 */
import type { HealthReport } from './report.js';
import { METRICS } from './report.js';
import type { HealthThresholds } from './thresholds.js';
import { isWorse } from './thresholds.js';

/** The states reports decide between ('suspect' belongs to expiry protection). */
export type ReportedHealth = 'healthy' | 'subhealthy' | 'down';

export const SEVERITY: Readonly<Record<ReportedHealth, number>> = { healthy: 0, subhealthy: 1, down: 2 };
const BY_SEVERITY: readonly ReportedHealth[] = ['healthy', 'subhealthy', 'down'];

export function targetHealth(current: ReportedHealth, report: HealthReport, t: HealthThresholds): ReportedHealth {
  const now = SEVERITY[current];
  let level = 0;
  for (const m of METRICS) {
    const value = report[m];
    if (value === undefined) continue;
    const bands = t[m];
    for (const [severity, band] of [
      [1, bands.subhealthy],
      [2, bands.down],
    ] as const) {
      if (band === undefined || severity <= level) continue;
      const limit = now >= severity ? band.exit : band.enter;
      if (isWorse(m, value, limit)) level = severity;
    }
  }
  return BY_SEVERITY[level] ?? 'healthy';
}

/** Which metrics of the report are past their subhealthy `enter` (for explanations in the UI and alerts). */
export function breachedMetrics(report: HealthReport, t: HealthThresholds): string[] {
  const out: string[] = [];
  for (const m of METRICS) {
    const value = report[m];
    const band = t[m].subhealthy;
    if (value !== undefined && band !== undefined && isWorse(m, value, band.enter)) out.push(m);
  }
  return out;
}
