/**
 * Instance counts by enabled flag and health, kept per cluster, service, namespace and for
 * the whole registry, so a listing knows how many items it holds (the cap on an
 * unpaginated answer) and what a service summary says without reading its instances.
 */
import { acceptsHealth, type HealthFilter } from '../../health/index.js';
import type { Health, Instance } from '../../registry/index.js';

/** Slot per health: enabled instances at 0-3, disabled ones at 4-7. */
const SLOT: Readonly<Record<Health, number>> = { healthy: 0, subhealthy: 1, suspect: 2, down: 3 };
const HEALTHS: readonly Health[] = ['healthy', 'subhealthy', 'suspect', 'down'];

/** Eight counters: [enabled × healthy, subhealthy, suspect, down, disabled × the same]. */
export type Counts = number[];

export function emptyCounts(): Counts {
  return [0, 0, 0, 0, 0, 0, 0, 0];
}

/** Adds (`sign` 1) or removes (-1) one instance. */
export function countInstance(c: Counts, i: Instance, sign: 1 | -1): void {
  c[SLOT[i.health] + (i.enabled ? 0 : 4)]! += sign;
}

export function addCounts(into: Counts, c: Counts): void {
  for (let k = 0; k < 8; k++) into[k]! += c[k]!;
}

export function total(c: Counts): number {
  let n = 0;
  for (let k = 0; k < 8; k++) n += c[k]!;
  return n;
}

/** How many a list with these filters shows (disabled ones only with `includeDisabled`, then the health filter). */
export function matching(c: Counts, includeDisabled: boolean, health: HealthFilter): number {
  let n = 0;
  for (let k = 0; k < 4; k++) {
    if (!acceptsHealth(health, HEALTHS[k]!)) continue;
    n += c[k]!;
    if (includeDisabled) n += c[k + 4]!;
  }
  return n;
}

/** The `health` object of a service summary: enabled instances by health, and the disabled ones. */
export function healthSummary(c: Counts): {
  healthy: number;
  subhealthy: number;
  suspect: number;
  down: number;
  disabled: number;
} {
  return { healthy: c[0]!, subhealthy: c[1]!, suspect: c[2]!, down: c[3]!, disabled: c[4]! + c[5]! + c[6]! + c[7]! };
}
