/**
 * SWIM failure detection (Das, Gupta, Motivala 2002; memberlist's state.go). Every probe
 * interval this node probes one member, walking a shuffled list of all members so that each
 * is probed within one pass:
 *
 *   t0                     ping ──────────────▶ target          ack ⇒ done
 *   t0 + probeTimeout      no ack: ping-req ──▶ k helpers ──▶ target, and ping the target
 *                          again ourselves (a second chance for a lost packet)
 *   t0 + probeInterval     still no ack (direct or relayed): suspect the target
 *
 * A suspicion is not a verdict: liveness.ts gives the member a suspicion timeout to refute
 * it. One lost packet therefore costs at most a suspicion, never a verdict. A ping to a
 * member we hold suspect carries that belief (`you`), so the member refutes in its ack.
 */
import { type GossipContext, otherMembers, type Peer, samePeer, shuffle } from './context.js';
import type { Liveness } from './merge.js';
import type { MemberRef } from './types.js';

interface Probe {
  readonly target: Peer;
  readonly id: number;
  readonly sentAt: number;
  readonly indirectAt: number;
  acked: boolean;
  indirectSent: boolean;
}

/** A ping we send for someone else's indirect probe; its ack is passed back. */
interface Relay {
  readonly requester: Peer;
  readonly requesterProbe: number;
  readonly target: MemberRef;
  readonly expires: number;
}

export class FailureDetector {
  private nextProbeAt = Infinity;
  private order: Peer[] = [];
  private position = 0;
  private current: Probe | null = null;
  private readonly relays = new Map<number, Relay>();
  private nextProbeId = 1;

  constructor(private readonly ctx: GossipContext) {}

  /** Starts probing at a random offset into the first interval, so nodes do not probe in step. */
  start(now: number): void {
    this.nextProbeAt = now + this.ctx.random.int(this.ctx.tuning.probeIntervalMs);
  }

  tick(now: number): void {
    const p = this.current;
    if (p && !p.acked && !p.indirectSent && now >= p.indirectAt) this.probeIndirectly(p);
    if (now >= this.nextProbeAt) {
      if (p && !p.acked) this.ctx.liveness.suspect(p.target.datacenter, p.target.id, now);
      this.current = null;
      this.probeNext(now);
      this.nextProbeAt += this.ctx.tuning.probeIntervalMs;
      if (this.nextProbeAt <= now) this.nextProbeAt = now + this.ctx.tuning.probeIntervalMs;
    }
    for (const [id, r] of this.relays) if (r.expires <= now) this.relays.delete(id);
  }

  nextWakeup(): number {
    const p = this.current;
    return p && !p.acked && !p.indirectSent ? Math.min(p.indirectAt, this.nextProbeAt) : this.nextProbeAt;
  }

  onPing(sender: Peer, probe: number, you: Liveness | null, now: number): void {
    // Refute first, so the ack's envelope already carries the new incarnation.
    if (you !== null) this.ctx.liveness.hear(this.ctx.self.datacenter, this.ctx.self.id, you, now);
    this.ctx.send(sender.address, sender, { kind: 'ack', probe, relayed: null });
  }

  onPingReq(sender: Peer, probe: number, target: Peer, now: number): void {
    if (samePeer(target, this.ctx.self)) {
      // Asked to probe ourselves (the requester's table is behind): answer for us directly.
      this.ctx.send(sender.address, sender, {
        kind: 'ack',
        probe,
        relayed: { target, incarnation: this.ctx.liveness.incarnation },
      });
      return;
    }
    const id = this.nextProbeId++;
    this.relays.set(id, {
      requester: sender,
      requesterProbe: probe,
      target,
      expires: now + this.ctx.tuning.probeTimeoutMs,
    });
    this.ctx.send(target.address, target, { kind: 'ping', probe: id, you: this.belief(target) });
  }

  onAck(
    sender: Peer,
    probe: number,
    relayed: { target: MemberRef; incarnation: number } | null,
    senderIncarnation: number,
    now: number,
  ): void {
    const p = this.current;
    if (relayed !== null) {
      if (p && p.id === probe && samePeer(relayed.target, p.target)) {
        p.acked = true;
        this.ctx.liveness.hear(
          relayed.target.datacenter,
          relayed.target.id,
          { incarnation: relayed.incarnation, status: 'alive', suspectors: [] },
          now,
        );
      }
      return;
    }
    if (p && p.id === probe && samePeer(sender, p.target)) {
      // Only an answer to the first ping times the path: after the retry we cannot tell which ping it answers.
      if (!p.acked && !p.indirectSent) this.ctx.observeRtt(sender.datacenter, now - p.sentAt);
      p.acked = true;
      return;
    }
    const r = this.relays.get(probe);
    if (r && samePeer(sender, r.target)) {
      this.relays.delete(probe);
      this.ctx.send(r.requester.address, r.requester, {
        kind: 'ack',
        probe: r.requesterProbe,
        relayed: { target: r.target, incarnation: senderIncarnation },
      });
    }
  }

  private probeNext(now: number): void {
    const target = this.nextTarget();
    if (target === null) return;
    const id = this.nextProbeId++;
    this.ctx.counters.probes++;
    this.current = {
      target,
      id,
      sentAt: now,
      indirectAt: now + this.ctx.tuning.probeTimeoutMs,
      acked: false,
      indirectSent: false,
    };
    this.ctx.send(target.address, target, { kind: 'ping', probe: id, you: this.belief(target) });
  }

  private probeIndirectly(p: Probe): void {
    p.indirectSent = true;
    this.ctx.counters.indirectProbes++;
    const helpers = shuffle(
      otherMembers(this.ctx).filter((m) => m.status === 'alive' && !samePeer(m.peer, p.target)),
      this.ctx.random,
    ).slice(0, this.ctx.tuning.indirectChecks);
    for (const h of helpers) this.ctx.send(h.peer.address, h.peer, { kind: 'ping-req', probe: p.id, target: p.target });
    this.ctx.send(p.target.address, p.target, { kind: 'ping', probe: p.id, you: this.belief(p.target) });
  }

  /** The next member in the shuffled pass that is still present and not already declared unreachable. */
  private nextTarget(): Peer | null {
    for (let rebuilt = false; ; rebuilt = true) {
      while (this.position < this.order.length) {
        const candidate = this.order[this.position++]!;
        const r = this.ctx.table.get(candidate.datacenter);
        const m = r?.descriptor?.members.find((x) => x.id === candidate.id);
        if (m === undefined || r?.liveness.get(m.id)?.status === 'unreachable') continue;
        return { datacenter: candidate.datacenter, id: m.id, address: m.address };
      }
      if (rebuilt) return null;
      this.order = shuffle(
        otherMembers(this.ctx)
          .filter((m) => m.status !== 'unreachable')
          .map((m) => m.peer),
        this.ctx.random,
      );
      this.position = 0;
    }
  }

  /** What we tell a member about itself: nothing while we think it alive. */
  private belief(target: MemberRef): Liveness | null {
    const l = this.ctx.table.get(target.datacenter)?.liveness.get(target.id);
    return l === undefined || l.status === 'alive' ? null : l;
  }
}
