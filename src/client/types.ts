/**
 * What the SDK hands out: instances as the HTTP API presents them, and the results of reads,
 * writes and watches. Plain readonly data; the SDK never mutates what it returned.
 */

export type { Health } from '../registry/model.js';

import type { Health } from '../registry/model.js';

/** One registered instance of a service, as the server presents it (src/server/present.ts builds exactly this). */
export interface Instance {
  readonly id: string;
  readonly namespace: string;
  readonly service: string;
  /** A group within the service: a zone, or `vip` for servers only VIP consumers reach. */
  readonly cluster: string;
  readonly address: string;
  readonly port: number;
  /** 0..10000, default 100; 0 keeps the instance listed but balancers send it nothing. */
  readonly weight: number;
  readonly tags: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  /** `suspect`: the registry lost this instance's keepalives during a wider fault and held it back. */
  readonly health: Health;
  /** Disabled instances stay registered but are not offered to consumers. */
  readonly enabled: boolean;
  /** True when bound to a session (goes away when keepalives stop). */
  readonly ephemeral: boolean;
  readonly sessionId?: string;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
}

/** What `register` sends; the server fills in the rest. */
export interface InstanceSpec {
  readonly namespace: string;
  readonly service: string;
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** Default `default`. */
  readonly cluster?: string;
  /** Default 100. */
  readonly weight?: number;
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, string>>;
  readonly enabled?: boolean;
}

export type Consistency = 'linearizable' | 'serializable';

export interface ServiceRef {
  readonly namespace: string;
  readonly service: string;
}

export interface ListResult {
  /** The registry revision the answer reflects. */
  readonly revision: number;
  /** The revision of the last change to this service. */
  readonly serviceRevision: number;
  readonly instances: readonly Instance[];
}

/** Every instance of a namespace at one revision. */
export interface NamespaceListResult {
  readonly revision: number;
  /** Sorted by service, cluster, id. */
  readonly instances: readonly Instance[];
}

/** One page of a listing: `continue` is set when more are left (every page is at the first page's `revision`). */
export interface ListPage extends ListResult {
  readonly continue?: string;
}

export interface NamespaceListPage extends NamespaceListResult {
  readonly continue?: string;
}

/** A service in GET /v1/services: its instance counts (health counts cover enabled instances), and with `instances` its instances. */
export interface ServiceSummary {
  readonly namespace: string;
  readonly service: string;
  /** Every instance, disabled ones included. */
  readonly instanceCount: number;
  /** The revision of its last change. */
  readonly revision: number;
  readonly health: {
    readonly healthy: number;
    readonly subhealthy: number;
    readonly suspect: number;
    readonly down: number;
    readonly disabled: number;
  };
  readonly instances?: readonly Instance[];
}

export interface ServicesResult {
  readonly revision: number;
  /** Sorted by namespace, service. */
  readonly services: readonly ServiceSummary[];
}

export interface ServicesPage extends ServicesResult {
  readonly continue?: string;
}

export interface GetResult {
  readonly revision: number;
  /** null when there is no such instance. */
  readonly instance: Instance | null;
}

export interface WriteResult {
  readonly revision: number;
}

export interface SessionInfo {
  readonly id: string;
  readonly ttlMs: number;
}

export type KeepaliveResult = 'ok' | 'expiring' | 'not-found';

export interface MemberStatus {
  readonly id: string;
  readonly role: string;
  readonly voter: boolean;
  readonly term: number | null;
  readonly commitIndex: number | null;
  readonly appliedIndex: number | null;
  readonly lag: number | null;
  readonly http: string | null;
  readonly connected?: boolean;
  readonly lastContactMs: number | null;
  /** The state-machine version the member's build implements (1 for a build that does not say); null if never heard. Absent from older servers. */
  readonly stateMachineVersion?: number | null;
  readonly [more: string]: unknown;
}

export interface ClusterStatus {
  readonly leader: string | null;
  readonly term?: number;
  readonly revision?: number;
  /** The id of the cluster the answering node belongs to; null: none (founded by an older build). Absent from older servers. */
  readonly clusterId?: string | null;
  /** The state-machine version the cluster runs at (docs/operations.md, "Upgrades"). Absent from older servers. */
  readonly clusterVersion?: number;
  /** The highest version every member supports, as the answering node last heard; the leader raises clusterVersion to it. */
  readonly supportedVersion?: number;
  readonly members: readonly MemberStatus[];
  /** The node that answered. */
  readonly node: string | null;
  readonly [more: string]: unknown;
}

/** A change, as a watch yields it. */
export type WatchEvent =
  | { readonly type: 'put'; readonly revision: number; readonly instance: Instance; readonly previous?: Instance }
  | { readonly type: 'delete'; readonly revision: number; readonly instance: Instance }
  /**
   * The whole current state of the watched service at `revision`: replace what you hold.
   * Comes first when the watch was opened with `initial: true`, and after the server
   * compacted the history past the resume point (`reason: 'compacted'`).
   */
  | {
      readonly type: 'reset';
      readonly revision: number;
      readonly instances: readonly Instance[];
      readonly reason: 'initial' | 'compacted';
    }
  /** Only with `progress: true`: nothing the watch cares about changed up to `revision`. */
  | { readonly type: 'progress'; readonly revision: number };

/** A pino-compatible logger; the SDK logs nothing unless given one. */
export interface ClientLogger {
  debug(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
}

/** GET /v1/health/policy: the admin-set health thresholds (docs/health.md). */
export interface HealthPolicyInfo {
  /** Registry revision the answer reflects. */
  readonly revision: number;
  /** Revision that stored the policy; 0 when none is stored. Pass it as `expectedRevision` to compare-and-set. */
  readonly policyRevision: number;
  /** The stored document; null when none (the built-in defaults apply). */
  readonly policy: Record<string, unknown> | null;
  readonly defaults: Record<string, unknown>;
  /** With namespace and service: what applies to that service. */
  readonly resolved?: Record<string, unknown>;
}

/** PUT /v1/health/policy: stored and applied. */
export interface HealthPolicyWrite {
  readonly revision: number;
  readonly policyRevision: number;
  /** False when the same document was already stored. */
  readonly changed: boolean;
  readonly policy: Record<string, unknown>;
}

/** The access rules document and its rules: the state machine's own types (type-only, like Health). */
export type { AccessRule, AccessRulesDoc } from '../registry/access-rules-doc.js';

import type { AccessRulesDoc } from '../registry/access-rules-doc.js';

/** GET /v1/access-rules: the access rules in force (the defaults when never set). */
export interface AccessRulesInfo {
  /** Registry revision the answer reflects. */
  readonly revision: number;
  /** Revision that stored the rules; 0 when never set. Pass it as `expectedRevision` to compare-and-set. */
  readonly rulesRevision: number;
  readonly rules: AccessRulesDoc;
}

/** PUT /v1/access-rules: stored and applied (the same rules sent again keep their `rulesRevision`). */
export interface AccessRulesWrite {
  readonly revision: number;
  /** Revision that stored the rules now in force. */
  readonly rulesRevision: number;
  /** The stored document, defaults filled in. */
  readonly rules: AccessRulesDoc;
}
