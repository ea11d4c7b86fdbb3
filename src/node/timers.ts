/**
 * The node's own timers: the Raft tick, and the duty timer that every `expiryCheckMs` makes
 * one call per duty (a removed node retires; the leader promotes caught-up learners, expires
 * sessions, raises the cluster version). Both run on the node's clock.
 */
import type { RawNode } from '../../raft/index.js';
import type { NodeClock, Timer } from './clock.js';
import type { LeaderDuties } from './leader-duties.js';
import type { MemberPublication } from './member-publication.js';
import type { Membership } from './membership.js';

export interface NodeTimersDeps {
  readonly raw: RawNode;
  readonly clock: NodeClock;
  readonly membership: Membership;
  readonly duties: LeaderDuties;
  /** This member's own entry in the started-member record. */
  readonly publication?: MemberPublication;
  /** Milliseconds per Raft tick. */
  readonly tickMs: number;
  readonly electionTicks: number;
  /** How often the duty timer fires. */
  readonly dutyMs: number;
  kick(): void;
  closed(): boolean;
}

export class NodeTimers {
  private tickTimer: Timer | null = null;
  private dutyTimer: Timer | null = null;

  constructor(private readonly d: NodeTimersDeps) {}

  start(): void {
    this.tickTimer = this.d.clock.setInterval(() => {
      this.d.raw.tick();
      this.d.kick();
    }, this.d.tickMs);
    this.dutyTimer = this.d.clock.setInterval(() => this.onDutyTimer(), this.d.dutyMs);
  }

  close(): void {
    this.tickTimer?.cancel();
    this.dutyTimer?.cancel();
  }

  /** Every dutyMs: one call per duty. */
  private onDutyTimer(): void {
    if (this.d.closed() || this.retireIfRemoved()) return;
    this.d.membership.maybePromoteLearners();
    this.d.duties.checkExpiry();
    this.d.duties.checkClusterVersion();
    this.d.duties.checkMemberAddresses();
    this.d.publication?.check();
  }

  /** Removed and handed over (two election timeouts since): stop taking part; the process should be stopped. */
  private retireIfRemoved(): boolean {
    if (!this.d.membership.retired(2 * this.d.electionTicks * this.d.tickMs)) return false;
    this.tickTimer?.cancel();
    this.tickTimer = null;
    return true;
  }
}
