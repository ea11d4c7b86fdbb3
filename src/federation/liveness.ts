/**
 * Applies what this node hears and observes about members' liveness to the table: the merge
 * rules, the suspicion timers that turn a suspicion into an "unreachable" verdict, and
 * refutation of accusations against this node itself. Every status change comes out as an
 * event, for members and for the datacenters whose status they decide.
 */
import type { GossipTuning } from './config.js';
import type { Counters, EventQueue } from './events.js';
import { type Liveness, mergeLiveness } from './merge.js';
import { suspicionBounds, suspicionTimeoutMs } from './suspicion.js';
import { type DatacenterRecord, type DatacenterTable, datacenterStatus, memberKey } from './table.js';
import type { MemberRef } from './types.js';

interface SuspicionTimer {
  readonly datacenter: string;
  readonly id: string;
  readonly incarnation: number;
  /** When this node began suspecting (its own clock: suspicion time is never gossiped). */
  readonly start: number;
  /** Another node already reached a verdict: count it as full confirmation. */
  verdictHeard: boolean;
}

export class LivenessTracker {
  /** This node's incarnation: only it raises it, to refute an accusation. */
  private own: number;
  private readonly selfKey: string;
  private readonly timers = new Map<string, SuspicionTimer>();

  constructor(
    private readonly table: DatacenterTable,
    private readonly self: MemberRef,
    startIncarnation: number,
    private readonly tuning: GossipTuning,
    private readonly events: EventQueue,
    private readonly counters: Counters,
  ) {
    this.own = startIncarnation;
    this.selfKey = memberKey(self.datacenter, self.id);
  }

  get incarnation(): number {
    return this.own;
  }

  /** Writes this node's own liveness (always alive, at its incarnation) into the table. */
  writeSelf(): void {
    const r = this.table.get(this.self.datacenter);
    if (r?.liveness.has(this.self.id))
      this.table.setLiveness(r, this.self.id, { incarnation: this.own, status: 'alive', suspectors: [] });
  }

  /**
   * Graceful leave: this node, at a new incarnation, is unreachable by its own word. The
   * mark of a leave is the member itself as the only suspector of its verdict; it travels
   * with the verdict, so every node that hears it (directly or by gossip) takes it as a
   * verdict at once, not as a suspicion to time out (see `hear`).
   */
  leave(): void {
    this.own += 1;
    const r = this.table.get(this.self.datacenter);
    if (r?.liveness.has(this.self.id))
      this.table.setLiveness(r, this.self.id, {
        incarnation: this.own,
        status: 'unreachable',
        suspectors: [this.selfKey],
      });
  }

  /** Gossip, an ack or an envelope told us `heard` about a member. */
  hear(datacenter: string, id: string, heard: Liveness, now: number): void {
    if (datacenter === this.self.datacenter && id === this.self.id) {
      this.maybeRefute(heard);
      return;
    }
    const r = this.table.get(datacenter);
    const local = r?.liveness.get(id);
    if (r === undefined || local === undefined) return;
    // A member's own word that it left is a verdict. (Anyone with the secret could forge it,
    // as any other claim: the secret is the trust boundary.) It needs a new incarnation, so
    // an older refutation cannot undo it, and a later one (the member back) does.
    const left =
      heard.status === 'unreachable' &&
      heard.suspectors.length === 1 &&
      heard.suspectors[0] === memberKey(datacenter, id) &&
      (heard.incarnation > local.incarnation ||
        (heard.incarnation === local.incarnation && local.status !== 'unreachable'));
    const next = left ? heard : mergeLiveness(local, heard, this.maxSuspectors());
    if (next === local) {
      if (heard.status === 'unreachable' && local.status === 'suspect' && heard.incarnation === local.incarnation) {
        const t = this.timers.get(memberKey(datacenter, id));
        if (t) t.verdictHeard = true;
      }
      return;
    }
    this.apply(r, id, local, next, now, heard.status === 'unreachable');
  }

  /** This node's own probe of the member went unanswered, directly and indirectly. */
  suspect(datacenter: string, id: string, now: number): void {
    const r = this.table.get(datacenter);
    const local = r?.liveness.get(id);
    if (r === undefined || local === undefined || local.status === 'unreachable') return;
    this.counters.suspicions++;
    const next = mergeLiveness(
      local,
      { incarnation: local.incarnation, status: 'suspect', suspectors: [this.selfKey] },
      this.maxSuspectors(),
    );
    if (next !== local) this.apply(r, id, local, next, now, false);
  }

  /** Turns every suspicion whose time is up into a verdict. */
  expire(now: number): void {
    for (const [key, t] of this.timers) {
      const r = this.table.get(t.datacenter);
      const l = r?.liveness.get(t.id);
      if (r === undefined || l === undefined || l.status !== 'suspect' || l.incarnation !== t.incarnation) {
        this.timers.delete(key);
        continue;
      }
      if (now >= this.deadline(t, l))
        this.apply(r, t.id, l, { incarnation: l.incarnation, status: 'unreachable', suspectors: [] }, now, false);
    }
  }

  /** The earliest time `expire` has work, or Infinity. */
  nextDeadline(): number {
    let next = Infinity;
    for (const t of this.timers.values()) {
      const l = this.table.get(t.datacenter)?.liveness.get(t.id);
      // A timer whose suspicion was refuted or overtaken waits for `expire` to drop it.
      if (l !== undefined && l.status === 'suspect' && l.incarnation === t.incarnation)
        next = Math.min(next, this.deadline(t, l));
    }
    return next;
  }

  /** Recomputes a datacenter's status (after its members or their liveness changed) and reports a change. */
  refreshStatus(r: DatacenterRecord): void {
    const status = datacenterStatus(r);
    if (status === r.status) return;
    this.events.push({ kind: 'datacenter-status', datacenter: r.name, from: r.status, to: status });
    r.status = status;
  }

  private deadline(t: SuspicionTimer, l: Liveness): number {
    const bounds = suspicionBounds(this.table.memberCount(), this.tuning);
    const confirmations = t.verdictHeard ? bounds.confirmationsWanted : Math.max(0, l.suspectors.length - 1);
    return t.start + suspicionTimeoutMs(confirmations, bounds);
  }

  private maxSuspectors(): number {
    return suspicionBounds(this.table.memberCount(), this.tuning).confirmationsWanted + 1;
  }

  private apply(
    r: DatacenterRecord,
    id: string,
    prev: Liveness,
    next: Liveness,
    now: number,
    verdictHeard: boolean,
  ): void {
    this.table.setLiveness(r, id, next);
    const key = memberKey(r.name, id);
    if (next.status === 'suspect') {
      const t = this.timers.get(key);
      if (t === undefined || t.incarnation !== next.incarnation) {
        this.timers.set(key, { datacenter: r.name, id, incarnation: next.incarnation, start: now, verdictHeard });
      } else if (verdictHeard) {
        t.verdictHeard = true;
      }
    } else {
      this.timers.delete(key);
    }
    if (prev.status !== next.status) {
      this.events.push({
        kind: 'member-status',
        datacenter: r.name,
        id,
        from: prev.status,
        to: next.status,
        incarnation: next.incarnation,
      });
    }
    this.refreshStatus(r);
  }

  /**
   * Someone believes something about us. An accusation at our incarnation or above, or any
   * claim at a higher incarnation (ours from before a restart), is answered by moving past
   * it; the new incarnation travels on every message we send and in every sync.
   */
  private maybeRefute(heard: Liveness): void {
    const accused = heard.status !== 'alive' && heard.incarnation >= this.own;
    if (!accused && heard.incarnation <= this.own) return;
    this.own = heard.incarnation + 1;
    this.writeSelf();
    if (accused) {
      this.counters.refutations++;
      this.events.push({ kind: 'refuted', incarnation: this.own });
    }
  }
}
