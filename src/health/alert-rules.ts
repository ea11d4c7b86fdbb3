/**
 * The alert rules: which conditions hold in one snapshot of the registry and the cluster.
 * Pure; the engine (alert-engine.ts) turns conditions over time into fired and resolved
 * alerts. Each condition has a stable id, `<kind>:<subject>`, so a receiver can match a
 * `resolved` to its `fired` and deduplicate.
 */
import type { ClusterAlertThresholds, ServiceAlertThresholds } from './policy.js';

export const ALERT_KINDS = [
  'service-min-healthy',
  'service-subhealthy',
  'expiry-protection',
  'node-lagging',
  'node-unreachable',
  'no-leader',
  'node-corrupt',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];
export type AlertSeverity = 'warning' | 'critical';

/** Instance counts of one service; disabled instances are not counted (consumers never get them). */
export interface ServiceCounts {
  readonly namespace: string;
  readonly service: string;
  readonly total: number;
  readonly healthy: number;
  readonly subhealthy: number;
  readonly suspect: number;
  readonly down: number;
}

export interface MemberSnapshot {
  readonly id: string;
  /** Committed entries the member has not applied yet, as this node sees it; null if unknown. */
  readonly lag: number | null;
  /** Milliseconds since this node last heard from the member; null if never. */
  readonly lastContactMs: number | null;
}

export interface AlertSnapshot {
  readonly services: readonly ServiceCounts[];
  readonly cluster: {
    /** The node taking the snapshot: it never reports itself unreachable. */
    readonly self: string;
    readonly leader: string | null;
    readonly members: readonly MemberSnapshot[];
    /** Members a corruption check found corrupt (src/ops/corruption-check.ts); absent: none known. */
    readonly corrupt?: readonly { readonly id: string; readonly detail: string }[];
  };
  /** Services the leader holds under expiry protection (empty on followers: suspect counts cover them). */
  readonly protection: readonly { readonly namespace: string; readonly service: string }[];
}

export interface Condition {
  readonly id: string;
  readonly kind: AlertKind;
  readonly severity: AlertSeverity;
  /** "namespace/service", a member id, or "cluster". */
  readonly subject: string;
  readonly message: string;
  readonly value: number;
  readonly threshold: number;
  /** The condition must hold this long (ms) before the alert fires. */
  readonly forMs: number;
}

export interface RuleLimits {
  readonly service: (namespace: string, service: string) => ServiceAlertThresholds;
  readonly cluster: ClusterAlertThresholds;
}

export function serviceConditions(
  s: ServiceCounts,
  protectedNow: boolean,
  limits: ServiceAlertThresholds,
): Condition[] {
  const subject = `${s.namespace}/${s.service}`;
  const out: Condition[] = [];
  if (limits.minHealthy > 0 && s.healthy < limits.minHealthy) {
    out.push({
      id: `service-min-healthy:${subject}`,
      kind: 'service-min-healthy',
      severity: s.healthy === 0 ? 'critical' : 'warning',
      subject,
      message: `${subject} has ${s.healthy} healthy instance${s.healthy === 1 ? '' : 's'} of ${s.total}; at least ${limits.minHealthy} expected`,
      value: s.healthy,
      threshold: limits.minHealthy,
      forMs: 0,
    });
  }
  const fraction = s.total === 0 ? 0 : s.subhealthy / s.total;
  if (limits.maxSubhealthyFraction < 1 && fraction > limits.maxSubhealthyFraction) {
    out.push({
      id: `service-subhealthy:${subject}`,
      kind: 'service-subhealthy',
      severity: 'warning',
      subject,
      message: `${subject}: ${s.subhealthy} of ${s.total} instances are subhealthy (${pct(fraction)} > ${pct(limits.maxSubhealthyFraction)})`,
      value: fraction,
      threshold: limits.maxSubhealthyFraction,
      forMs: 0,
    });
  }
  if (protectedNow || s.suspect > 0) {
    out.push({
      id: `expiry-protection:${subject}`,
      kind: 'expiry-protection',
      severity: 'critical',
      subject,
      message: `${subject}: expiry protection holds ${s.suspect} instance${s.suspect === 1 ? '' : 's'} as suspect (keepalives stopped for many at once: network fault?)`,
      value: s.suspect,
      threshold: 0,
      forMs: 0,
    });
  }
  return out;
}

export function clusterConditions(c: AlertSnapshot['cluster'], limits: ClusterAlertThresholds): Condition[] {
  const out: Condition[] = [];
  if (c.leader === null) {
    out.push({
      id: 'no-leader:cluster',
      kind: 'no-leader',
      severity: 'critical',
      subject: 'cluster',
      message: `no leader seen by ${c.self}: writes are refused`,
      value: 0,
      threshold: 0,
      forMs: limits.noLeaderMs,
    });
  }
  for (const m of c.corrupt ?? []) {
    out.push({
      id: `node-corrupt:${m.id}`,
      kind: 'node-corrupt',
      severity: 'critical',
      subject: m.id,
      message: `${m.id}'s state machine differs from the other members' (${m.detail}): it refuses reads; replace it`,
      value: 1,
      threshold: 0,
      forMs: 0,
    });
  }
  for (const m of c.members) {
    if (m.id === c.self) continue;
    const silent = m.lastContactMs === null || m.lastContactMs > limits.unreachableMs;
    if (silent) {
      out.push({
        id: `node-unreachable:${m.id}`,
        kind: 'node-unreachable',
        severity: 'critical',
        subject: m.id,
        message:
          m.lastContactMs === null
            ? `${c.self} has never heard from ${m.id}`
            : `${c.self} has not heard from ${m.id} for ${Math.round(m.lastContactMs / 1000)} s`,
        value: m.lastContactMs ?? -1,
        threshold: limits.unreachableMs,
        // Never heard (e.g. just started): give it the same time a silent member gets.
        forMs: m.lastContactMs === null ? limits.unreachableMs : 0,
      });
      continue; // an unreachable member's lag is stale: one alert is enough
    }
    if (m.lag !== null && m.lag > limits.maxLagEntries) {
      out.push({
        id: `node-lagging:${m.id}`,
        kind: 'node-lagging',
        severity: 'warning',
        subject: m.id,
        message: `${m.id} is ${m.lag} entries behind the commit index (more than ${limits.maxLagEntries})`,
        value: m.lag,
        threshold: limits.maxLagEntries,
        forMs: limits.lagForMs,
      });
    }
  }
  return out;
}

function pct(f: number): string {
  return `${Math.round(f * 100)} %`;
}
