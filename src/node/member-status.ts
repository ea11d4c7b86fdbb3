/**
 * What members say about themselves: every STATUS_EVERY_MS each node tells the others its
 * role, indexes, HTTP address, slowest recent write and the state-machine version its build
 * implements. GET /v1/cluster shows the reports; the leader raises the cluster version to
 * the highest one every member supports (LeaderDuties.checkClusterVersion).
 */
import type { RawNode } from '../../raft/index.js';
import { BASE_CLUSTER_VERSION } from '../registry/index.js';
import type { NodeClock, Timer } from './clock.js';
import type { PeerMessage, PeerStatus } from './peer-messages.js';

/** How often a node tells the others about itself. */
const STATUS_EVERY_MS = 500;
/** A member's reported build counts toward raising the cluster version only this long. */
const STATUS_FRESH_MS = 3000;

export type ReportedStatus = PeerStatus & { readonly at: number };

export interface MemberStatusDeps {
  readonly id: string;
  readonly raw: RawNode;
  readonly clock: NodeClock;
  /** The state-machine version this build implements. */
  readonly buildVersion: number;
  /** This node's HTTP address as peers should show it. */
  readonly advertiseHttp: string | null;
  appliedIndex(): number;
  slowestRecentWriteMs(): number;
  send(to: string, m: PeerMessage): void;
}

export class MemberStatus {
  private readonly reports = new Map<string, ReportedStatus>();
  /**
   * When each report arrived on the monotonic clock: freshness is elapsed time, which a step
   * of the wall clock must neither stretch (a silent member counted long after) nor cut.
   */
  private readonly receivedAt = new Map<string, number>();
  private timer: Timer | null = null;

  constructor(private readonly d: MemberStatusDeps) {}

  /** Starts telling the other members about this node. */
  start(): void {
    this.timer = this.d.clock.setInterval(() => this.gossip(), STATUS_EVERY_MS);
  }

  close(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** What this node says about itself. */
  self(): PeerStatus {
    const st = this.d.raw.status();
    return {
      role: st.softState.role,
      term: st.hardState.term,
      commitIndex: st.hardState.commit,
      appliedIndex: this.d.appliedIndex(),
      http: this.d.advertiseHttp,
      slowestWriteMs: this.d.slowestRecentWriteMs(),
      stateMachineVersion: this.d.buildVersion,
    };
  }

  /** A member's report arrived: stamped with the wall clock for display, timed on the monotonic one. */
  onReport(from: string, status: PeerStatus): void {
    this.reports.set(from, { ...status, at: this.d.clock.wallNow() });
    this.receivedAt.set(from, this.d.clock.now());
  }

  /** What `id` last said about itself (this node: now); null if never heard. */
  reported(id: string): ReportedStatus | null {
    if (id === this.d.id) return { ...this.self(), at: this.d.clock.wallNow() };
    return this.reports.get(id) ?? null;
  }

  /**
   * What every current member supports, for raising the cluster version: the lowest version
   * reported, a member not heard from within STATUS_FRESH_MS (or reporting none: an older
   * build) counting as 1, so a member just restarted on an older build holds it back.
   */
  supportedVersion(): number {
    const conf = this.d.raw.status().conf;
    const now = this.d.clock.now();
    let lowest = this.d.buildVersion;
    for (const id of [...conf.voters, ...conf.learners]) {
      if (id === this.d.id) continue;
      const st = this.reports.get(id);
      const receivedAt = this.receivedAt.get(id);
      const v =
        st !== undefined && receivedAt !== undefined && now - receivedAt <= STATUS_FRESH_MS
          ? (st.stateMachineVersion ?? BASE_CLUSTER_VERSION)
          : BASE_CLUSTER_VERSION;
      lowest = Math.min(lowest, v);
    }
    return lowest;
  }

  private gossip(): void {
    const status = this.self();
    const conf = this.d.raw.status().conf;
    for (const id of [...conf.voters, ...conf.learners])
      if (id !== this.d.id) this.d.send(id, { kind: 'status', status });
  }
}
