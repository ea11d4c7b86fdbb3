/**
 * What the workload and the nemesis share about a LocalCluster: the current members
 * (the nemesis adds and removes one during a membership change), the members a healed
 * cluster has (the founding ones, until a `rejoin` fault replaces one under a new id), the
 * leader as last reported by any answer (`x-rollcall-leader`), and the choice of a node
 * for an operation.
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
  /**
   * Nodes removed from the membership whose process still runs (a removed leader hands
   * over and lingers for a moment). No operation picks them; the run's straggler reads
   * them, as a client with an old list of nodes would.
   */
  readonly lingering = new Set<string>();
  /**
   * Fatal lines the nodes logged (a node that stops serving on an error of its own), as
   * `<id> <message>`; filled by the LinCluster. A run fails on any that appear during it.
   */
  readonly fatalLog: string[] = [];

  /** The members a healed cluster has: the founding ones, with any rejoined member under its new id. */
  private baseIds: string[];
  /** How many voters a healed cluster has. */
  readonly size: number;

  constructor(readonly cluster: LocalCluster) {
    this.memberIds = cluster.nodes.map((n) => n.id);
    this.baseIds = [...this.memberIds];
    this.size = this.memberIds.length;
  }

  get members(): readonly string[] {
    return this.memberIds;
  }

  /**
   * The members the cluster should have once healed: the nodes it started with, except
   * that a member removed by a `rejoin` fault is replaced by the node that rejoined for it.
   * Healing removes every other member.
   */
  get baseMembers(): readonly string[] {
    return this.baseIds;
  }

  /** Adds a member; `base` makes it one of the members a healed cluster keeps. */
  addMember(id: string, base = false): void {
    if (!this.memberIds.includes(id)) this.memberIds.push(id);
    if (base && !this.baseIds.includes(id)) this.baseIds.push(id);
  }

  /** Removes a member, from the base too (a removed node never comes back under its id). */
  removeMember(id: string): void {
    this.memberIds = this.memberIds.filter((m) => m !== id);
    this.baseIds = this.baseIds.filter((m) => m !== id);
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
