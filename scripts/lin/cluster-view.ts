/**
 * What the workload and the nemesis share about a LocalCluster: the current members
 * (the nemesis adds and removes one during a membership change), the leader as last
 * reported by any answer (`x-rollcall-leader`), and the choice of a node for an operation.
 */
import type { LocalCluster } from '../local-cluster.js';

export type TargetKind = 'leader' | 'follower' | 'any';

export interface Target {
  readonly id: string;
  readonly url: string;
}

export class ClusterView {
  /** Ids of the current members, in order. */
  private memberIds: string[];
  /** The leader as last reported by a node (a hint: it may be stale). */
  leaderHint: string | null = null;

  private readonly originalSize: number;

  constructor(readonly cluster: LocalCluster) {
    this.memberIds = cluster.nodes.map((n) => n.id);
    this.originalSize = cluster.nodes.length;
  }

  get members(): readonly string[] {
    return this.memberIds;
  }

  /** The original members (the nodes the cluster started with). */
  get originalMembers(): readonly string[] {
    return this.cluster.nodes.slice(0, this.originalSize).map((n) => n.id);
  }

  addMember(id: string): void {
    if (!this.memberIds.includes(id)) this.memberIds.push(id);
  }

  removeMember(id: string): void {
    this.memberIds = this.memberIds.filter((m) => m !== id);
  }

  url(id: string): string {
    return this.cluster.node(id).url;
  }

  target(id: string): Target {
    return { id, url: this.url(id) };
  }

  /** Notes the leader named by an answer's `x-rollcall-leader` header. */
  observe(headers: Headers): void {
    const leader = headers.get('x-rollcall-leader');
    if (leader && this.memberIds.includes(leader)) this.leaderHint = leader;
  }

  /**
   * A node for an operation. `r` in [0, 1) comes from the generated plan, so the choice is
   * part of the case; `attempt` moves a retry on to the next node.
   */
  pick(kind: TargetKind, r: number, attempt = 0): Target {
    const ids = this.memberIds;
    const leader = this.leaderHint !== null && ids.includes(this.leaderHint) ? this.leaderHint : null;
    let pool: readonly string[] = ids;
    if (kind === 'leader' && leader !== null) pool = [leader];
    else if (kind === 'follower' && leader !== null && ids.length > 1) pool = ids.filter((i) => i !== leader);
    const first = Math.floor(r * pool.length) % pool.length;
    const id = attempt === 0 ? pool[first]! : ids[(ids.indexOf(pool[first]!) + attempt) % ids.length]!;
    return this.target(id);
  }
}
