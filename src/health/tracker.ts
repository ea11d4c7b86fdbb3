/**
 * The leader's in-memory view of what providers report, and the health each instance
 * should have. Pure logic: time is an argument, there are no timers. Reports are not
 * replicated; only transitions are, as `setHealth` commands (see healthCommands), so
 * keepalives stay off the log.
 *
 * Per instance the tracker keeps its last report and a decided `state`:
 *  - report(): classify against the thresholds with hysteresis (classify.ts); a new level
 *    must be confirmed by `degradeAfter` (worse) or `recoverAfter` (better) consecutive
 *    reports, and getting better also waits until the instance has spent `minDwellMs` in
 *    its current state. So a state can change at most once per dwell in the good direction,
 *    and an instance cannot flap faster than that.
 *  - due(): decided states that the registry does not show yet, to be proposed. A proposal
 *    is not repeated within `reproposeMs`; once the registry shows it, nothing more is
 *    proposed. A report older than `reportTtlMs` stops counting and the instance drifts back
 *    to healthy (after the dwell): liveness itself is the session's business.
 *
 * A new leader starts empty and adopts the registry's health as the starting state the
 * first time it hears about an instance; the dwell counts from then.
 * Instances the registry holds as `suspect` (expiry protection) are left alone.
 */

import type { SetHealth } from '../registry/index.js';
import type { ReportedHealth } from './classify.js';
import { SEVERITY, targetHealth } from './classify.js';
import type { HealthReport } from './report.js';
import type { HealthThresholds } from './thresholds.js';

export interface InstanceRef {
  readonly namespace: string;
  readonly service: string;
  readonly id: string;
}

/** What the tracker reads of the applied registry (Registry satisfies it). */
export interface HealthView {
  getInstance(namespace: string, service: string, id: string): { readonly health: string } | undefined;
}

export interface HealthTransition extends InstanceRef {
  /** What the registry shows now. */
  readonly from: string;
  readonly to: ReportedHealth;
}

export interface TrackedHealth extends InstanceRef {
  readonly report: HealthReport;
  readonly reportedAt: number;
  /** The health the leader decided; the registry follows once the proposal applies. */
  readonly state: ReportedHealth;
  readonly since: number;
  /** A level waiting for confirmation, and how many reports have agreed so far. */
  readonly pending: { readonly to: ReportedHealth; readonly count: number } | null;
}

export interface HealthTrackerOptions {
  /** The thresholds in force for a service (a PolicyResolver's `thresholds`). */
  readonly thresholds: (namespace: string, service: string) => HealthThresholds;
  /** A proposal not yet reflected in the registry is proposed again after this long (default 5 s). */
  readonly reproposeMs?: number;
  /** Most instances tracked; reports for more are ignored (default 100 000). */
  readonly maxInstances?: number;
}

interface Entry {
  readonly ref: InstanceRef;
  report: HealthReport;
  reportedAt: number;
  state: ReportedHealth;
  since: number;
  pending: { to: ReportedHealth; count: number } | null;
  proposed: { to: ReportedHealth; at: number } | null;
}

const EMPTY: HealthReport = Object.freeze({});

export class HealthTracker {
  readonly #entries = new Map<string, Entry>();
  readonly #reproposeMs: number;
  readonly #max: number;

  constructor(private readonly options: HealthTrackerOptions) {
    this.#reproposeMs = options.reproposeMs ?? 5000;
    this.#max = options.maxInstances ?? 100_000;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Takes a report for one instance. `current` is the instance's health in the registry,
   * used only the first time (to adopt it) and to leave suspect instances alone.
   * Returns the decided state afterwards (null when the instance is not tracked).
   */
  report(ref: InstanceRef, report: HealthReport, now: number, current: string): ReportedHealth | null {
    const key = keyOf(ref);
    let e = this.#entries.get(key);
    if (e === undefined) {
      if (this.#entries.size >= this.#max) return null;
      e = {
        ref: { namespace: ref.namespace, service: ref.service, id: ref.id },
        report,
        reportedAt: now,
        state: adopt(current),
        since: now,
        pending: null,
        proposed: null,
      };
      this.#entries.set(key, e);
    }
    e.report = report;
    e.reportedAt = now;
    if (current === 'suspect') {
      e.pending = null;
      return e.state;
    }
    this.#step(e, targetHealth(e.state, report, this.#thresholds(e)), now, false);
    return e.state;
  }

  /**
   * Transitions to propose now; forgets instances the registry no longer has. Call it
   * periodically on the leader (it also lets stale reports lapse).
   */
  due(now: number, view: HealthView): HealthTransition[] {
    const out: HealthTransition[] = [];
    for (const [key, e] of [...this.#entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      const inst = view.getInstance(e.ref.namespace, e.ref.service, e.ref.id);
      if (inst === undefined) {
        this.#entries.delete(key);
        continue;
      }
      const t = this.#thresholds(e);
      if (now - e.reportedAt > t.reportTtlMs && e.state !== 'healthy') {
        // No fresh evidence either way: back to healthy, but only after the dwell.
        e.report = EMPTY;
        this.#step(e, 'healthy', now, true);
      }
      if (inst.health === 'suspect' || inst.health === e.state) {
        if (inst.health === e.state) e.proposed = null;
        continue;
      }
      if (e.proposed !== null && e.proposed.to === e.state && now - e.proposed.at < this.#reproposeMs) continue;
      e.proposed = { to: e.state, at: now };
      out.push({ namespace: e.ref.namespace, service: e.ref.service, id: e.ref.id, from: inst.health, to: e.state });
    }
    return out;
  }

  get(ref: InstanceRef): TrackedHealth | undefined {
    const e = this.#entries.get(keyOf(ref));
    return e === undefined ? undefined : view(e);
  }

  /** Everything tracked, sorted by namespace, service, id (for the monitoring page). */
  list(filter: { namespace?: string; service?: string } = {}): TrackedHealth[] {
    const out: TrackedHealth[] = [];
    for (const [, e] of [...this.#entries].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      if (filter.namespace !== undefined && e.ref.namespace !== filter.namespace) continue;
      if (filter.service !== undefined && e.ref.service !== filter.service) continue;
      out.push(view(e));
    }
    return out;
  }

  /** On losing or gaining leadership: a leader's view starts from the registry. */
  reset(): void {
    this.#entries.clear();
  }

  #thresholds(e: Entry): HealthThresholds {
    return this.options.thresholds(e.ref.namespace, e.ref.service);
  }

  /** Moves toward `target` once it is confirmed (or at once when `decisive`) and the dwell allows. */
  #step(e: Entry, target: ReportedHealth, now: number, decisive: boolean): void {
    if (target === e.state) {
      e.pending = null;
      return;
    }
    const t = this.#thresholds(e);
    e.pending = e.pending?.to === target ? { to: target, count: e.pending.count + 1 } : { to: target, count: 1 };
    const worse = SEVERITY[target] > SEVERITY[e.state];
    const confirmed = decisive || e.pending.count >= (worse ? t.degradeAfter : t.recoverAfter);
    const dwelt = worse || now - e.since >= t.minDwellMs;
    if (!confirmed || !dwelt) return;
    e.state = target;
    e.since = now;
    e.pending = null;
  }
}

/** The setHealth commands for due() transitions, in the proposer's term. */
export function healthCommands(transitions: readonly HealthTransition[], term: number): SetHealth[] {
  return transitions.map((t) => ({
    type: 'setHealth',
    term,
    namespace: t.namespace,
    service: t.service,
    id: t.id,
    health: t.to,
  }));
}

function adopt(current: string): ReportedHealth {
  return current === 'subhealthy' || current === 'down' ? current : 'healthy';
}

function keyOf(ref: InstanceRef): string {
  return `${ref.namespace}/${ref.service}/${ref.id}`;
}

function view(e: Entry): TrackedHealth {
  return {
    ...e.ref,
    report: e.report,
    reportedAt: e.reportedAt,
    state: e.state,
    since: e.since,
    pending: e.pending === null ? null : { ...e.pending },
  };
}
