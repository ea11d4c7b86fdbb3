/**
 * Where each message from a peer goes: Raft messages into the core; work forwarded to this
 * node as leader (writes, keepalives, cluster operations) to the part that does it, with
 * "not the leader" when it cannot; answers to work this node forwarded back to their
 * waiters; members' status reports; the corruption check's requests, verdicts and disarms.
 */
import type { RawNode, SoftState } from '../../raft/index.js';
import type { CorruptionCheck } from './corruption-check.js';
import { notLeader } from './errors.js';
import type { ForwardedRequests } from './forwarding.js';
import { toOutcome } from './forwarding.js';
import type { KeepaliveRelays } from './keepalive-relays.js';
import type { LeaderDuties } from './leader-duties.js';
import type { MemberStatus } from './member-status.js';
import type { Membership } from './membership.js';
import type { PeerMessage } from './peer-messages.js';
import type { LocalProposer } from './proposer.js';

/** How long work forwarded to this node as leader may take here. */
const FORWARDED_WORK_MS = 10_000;

export interface PeerInboxDeps {
  readonly raw: RawNode;
  readonly forwards: ForwardedRequests;
  readonly proposer: LocalProposer;
  readonly duties: LeaderDuties;
  readonly relays: KeepaliveRelays;
  readonly membership: Membership;
  readonly memberStatus: MemberStatus;
  readonly corruptionCheck: CorruptionCheck;
  soft(): SoftState;
  send(to: string, m: PeerMessage): void;
  kick(): void;
  closed(): boolean;
}

export class PeerInbox {
  constructor(private readonly d: PeerInboxDeps) {}

  receive(from: string, m: PeerMessage): void {
    if (this.d.closed()) return;
    // Any message shows the peer's loop turning (a follower answers every heartbeat).
    this.d.relays.heard(from);
    const { forwards, send } = this.d;
    switch (m.kind) {
      case 'raft':
        this.d.raw.step(m.msg);
        this.d.kick();
        return;
      case 'propose':
        this.propose(from, m.req, m.data);
        return;
      case 'keepalive': {
        const { duties } = this.d;
        if (!duties.active()) {
          // The sender retries (a new leader catching up answers within a round trip or two).
          const soft = this.d.soft();
          const why = soft.role === 'leader' ? 'the new leader is still applying earlier entries' : undefined;
          send(from, { kind: 'keepaliveResult', req: m.req, outcome: notLeader(soft.leader, why) });
          return;
        }
        const outcome = duties.keepalive(m.sessionId, m.report, from);
        send(from, { kind: 'keepaliveResult', req: m.req, outcome: { ok: true, value: outcome } });
        return;
      }
      case 'admin': {
        const soft = this.d.soft();
        if (soft.role !== 'leader') {
          send(from, { kind: 'adminResult', req: m.req, outcome: notLeader(soft.leader) });
          return;
        }
        this.d.membership.run(m.op, FORWARDED_WORK_MS).then(
          (value) => send(from, { kind: 'adminResult', req: m.req, outcome: { ok: true, value } }),
          (err: unknown) => send(from, { kind: 'adminResult', req: m.req, outcome: toOutcome(err) }),
        );
        return;
      }
      case 'proposeResult':
      case 'keepaliveResult':
      case 'adminResult':
      case 'hashResult':
      case 'disarmResult':
        // Each answer goes to the waiter of its request, which knows the type it expects.
        forwards.settle<unknown>(m.req, m.outcome);
        return;
      case 'status':
        this.d.memberStatus.onReport(from, m.status);
        return;
      case 'hashRequest':
        this.d.corruptionCheck.answerHashRequest(from, m.req, m.index);
        return;
      case 'corrupt':
        this.d.corruptionCheck.onCorruptNotice(from, m.detail);
        return;
      case 'disarm':
        this.d.corruptionCheck.answerDisarm(from, m.req);
        return;
      case 'disarmed':
        this.d.corruptionCheck.onDisarmedNotice(m.members);
        return;
    }
  }

  /** A write a follower forwarded to this node as leader. */
  private propose(from: string, req: number, data: Uint8Array): void {
    const soft = this.d.soft();
    if (soft.role !== 'leader') {
      this.d.send(from, { kind: 'proposeResult', req, outcome: notLeader(soft.leader) });
      return;
    }
    // A view, not a copy: the transport's decoded binary values already own their memory.
    this.d.proposer.propose(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), FORWARDED_WORK_MS).then(
      (value) => this.d.send(from, { kind: 'proposeResult', req, outcome: { ok: true, value } }),
      (err: unknown) => this.d.send(from, { kind: 'proposeResult', req, outcome: toOutcome(err) }),
    );
  }
}
