/**
 * What consumers ask for: healthy instances only, or healthy and subhealthy (the
 * `health` query parameter of instance lists). Suspect instances are ones expiry
 * protection keeps listed because they may still serve: they go with subhealthy.
 */
import type { Parsed } from './report.js';

export const HEALTH_FILTERS = ['healthy', 'usable', 'all'] as const;
export type HealthFilter = (typeof HEALTH_FILTERS)[number];

const ACCEPTS: Readonly<Record<HealthFilter, ReadonlySet<string>>> = {
  healthy: new Set(['healthy']),
  usable: new Set(['healthy', 'subhealthy', 'suspect']),
  all: new Set(['healthy', 'subhealthy', 'suspect', 'down']),
};

/** `healthy` (only healthy), `usable` (healthy, subhealthy and suspect), `all` (the default: everything). */
export function parseHealthFilter(raw: unknown): Parsed<HealthFilter> {
  if (raw === undefined) return { ok: true, value: 'all' };
  if (typeof raw === 'string' && (HEALTH_FILTERS as readonly string[]).includes(raw))
    return { ok: true, value: raw as HealthFilter };
  return { ok: false, field: 'health', message: `health: must be one of ${HEALTH_FILTERS.join(', ')}` };
}

export function acceptsHealth(filter: HealthFilter, health: string): boolean {
  return ACCEPTS[filter].has(health);
}
