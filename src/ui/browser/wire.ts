// What the page reads from the node: the JSON of each endpoint it calls. The SDK's types
// (src/client/types.ts) and the server's own types, where their files are free of Node APIs
// (type-only imports: erased from the compiled scripts); the rest mirrors the route that
// answers, named beside each shape.
import type { ClusterStatus, Instance, MemberStatus, ServicesPage } from '../../client/types.js';
import type { Alert, AlertEvent } from '../../health/alert-engine.js';
import type { ReportedHealth } from '../../health/classify.js';
import type { HealthPolicy } from '../../health/policy.js';
import type { HealthReport, Metric } from '../../health/report.js';
import type { Band, HealthThresholds } from '../../health/thresholds.js';
import type { EventCause, Health } from '../../registry/model.js';

export type {
  Alert,
  AlertEvent,
  Band,
  ClusterStatus,
  EventCause,
  Health,
  HealthPolicy,
  HealthReport,
  Instance,
  MemberStatus,
  Metric,
  ServicesPage,
};

/** An unnamed event of GET /v1/watch (src/server/watch/sse.ts `eventPayload`). */
export interface WatchChange {
  readonly type: 'put' | 'delete';
  readonly revision: number;
  readonly instance: Instance;
  /** On a put that changed an existing instance: what it was. */
  readonly previous?: Instance;
  readonly cause?: EventCause;
}

/** The `progress` event of GET /v1/watch: nothing changed up to this revision. */
export interface WatchProgress {
  readonly revision: number;
}

/** A provider's last report as the leader tracks it (the tracker's `TrackedHealth`), in GET /v1/health/reports. */
export interface TrackedReport {
  readonly namespace: string;
  readonly service: string;
  readonly id: string;
  readonly report: HealthReport;
  readonly state: ReportedHealth;
  /** A level waiting for confirmation by more reports or the minimum dwell. */
  readonly pending: { readonly to: ReportedHealth; readonly count: number } | null;
  readonly ageMs: number;
}

/** GET /v1/health/reports (the server's `ReportsReply`). */
export interface ReportsReply {
  readonly from: string | null;
  readonly available: boolean;
  readonly reason?: string;
  readonly reports: readonly TrackedReport[];
}

/** GET /v1/health/policy: the stored policy (null: none) and the built-in thresholds it overrides. */
export interface PolicyReply {
  readonly revision: number;
  /** 0: none stored. */
  readonly policyRevision: number;
  readonly policy: HealthPolicy | null;
  readonly defaults: { readonly health: HealthThresholds };
}

/** The `snapshot` event of GET /v1/alerts/stream: the active alerts on connect. */
export interface AlertSnapshot {
  readonly seq: number;
  readonly alerts: readonly Alert[];
}

/** The error shape of every 4xx and 5xx answer. */
export interface ErrorReply {
  readonly error?: { readonly code?: string; readonly message?: string };
}

/** A datacenter's or a member's liveness as this node's failure detector sees it (src/federation). */
export type Liveness = 'alive' | 'suspect' | 'unreachable';

/** A datacenter in GET /v1/federation (src/server/routes/federation.ts). */
export interface DatacenterStatus {
  readonly name: string;
  /** This node's own datacenter. */
  readonly local: boolean;
  readonly status: Liveness;
  readonly leader: string | null;
  readonly revision: number;
  /** Smoothed round-trip time (0 for our own, null before a sample). */
  readonly rttMs: number | null;
  /** Wall-clock ms of the last authenticated message, null if never. */
  readonly lastHeard: number | null;
  readonly members: readonly {
    readonly id: string;
    readonly address: string;
    readonly role: string;
    readonly status: Liveness;
    readonly lastHeard: number | null;
  }[];
}

/** GET /v1/federation: every datacenter this node knows (gossiped: eventually consistent). */
export interface FederationReply {
  /** This node's datacenter (`--datacenter`). */
  readonly datacenter: string;
  /** False: no `--federation-secret`; the list holds this datacenter only. */
  readonly enabled: boolean;
  readonly datacenters: readonly DatacenterStatus[];
}
