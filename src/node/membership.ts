/**
 * Membership on the leader: adding, removing and promoting members one change at a time,
 * handing leadership over, and following the member addresses the log carries (on every
 * node). The cluster operations arrive here through the LeaderRouter (node.ts), so they
 * run on the leader whichever node took the request.
 */
import type { ConfChange, ConfState, RawNode, SoftState } from '../../raft/index.js';
import type { Logger } from '../log/index.js';
import type { PeerAddress } from '../transport/index.js';
import { formatHostPort, parseHostPort } from '../transport/index.js';
import type { NodeClock } from './clock.js';
import { sleep } from './clock.js';
import { fromCoreRefusal, NodeError } from './errors.js';
import type { PeerBook } from './peer-book.js';
import type { AdminOp, AdminResult } from './peer-messages.js';
import type { PendingProposals } from './proposals.js';

/** A learner this close to the leader's last index is promoted to voter. */
const PROMOTE_WITHIN_ENTRIES = 50;

export interface MembershipDeps {
  readonly id: string;
  readonly raw: RawNode;
  readonly proposals: PendingProposals;
  readonly log: Logger;
  readonly clock: NodeClock;
  /** The addresses this node dials; this class keeps it current from the log. */
  readonly book: PeerBook;
  /** Hands the addresses to the transport. */
  setPeers(addresses: ReadonlyMap<string, PeerAddress>): void;
  soft(): SoftState;
  /** The configuration this node has applied. */
  conf(): ConfState;
  kick(): void;
}

export class Membership {
  /** When this node's own removal was applied (monotonic); null while it is a member. */
  private removedAt: number | null = null;

  constructor(private readonly d: MembershipDeps) {}

  /** Runs a cluster operation on the leader. */
  async run(op: AdminOp, timeoutMs: number): Promise<AdminResult> {
    switch (op.type) {
      case 'addMember':
        return this.propose({ type: 'addLearner', node: op.id, context: op.address }, timeoutMs, () =>
          this.existing(op.id, op.address),
        );
      case 'removeMember':
        return this.propose({ type: 'removeNode', node: op.id }, timeoutMs);
      case 'transfer':
        return this.transfer(op.to ?? this.bestTransferee(), timeoutMs);
    }
  }

  /**
   * Proposes a membership change, waiting out a change still in progress (one at a time).
   * `alreadyDone` is asked before each try: a retried request whose change has meanwhile
   * taken effect is answered from the membership instead of being proposed again.
   */
  private async propose(
    cc: ConfChange,
    timeoutMs: number,
    alreadyDone?: () => AdminResult | null,
  ): Promise<AdminResult> {
    const { raw, clock } = this.d;
    const deadline = clock.now() + timeoutMs;
    for (;;) {
      const soft = this.d.soft();
      if (soft.role !== 'leader') throw new NodeError('NO_LEADER', 'leadership moved; retry', soft.leader);
      const done = alreadyDone?.();
      if (done) return done;
      const res = raw.proposeConfChange(cc);
      this.d.kick();
      if (res.ok) {
        await this.d.proposals.wait(res.value.index, res.value.term, Math.max(1, deadline - clock.now()));
        return { index: res.value.index };
      }
      if (res.error.code !== 'CONF_CHANGE_PENDING' || clock.now() > deadline) throw fromCoreRefusal(res.error);
      await sleep(clock, 50);
    }
  }

  private async transfer(to: string, timeoutMs: number): Promise<AdminResult> {
    const { raw, clock } = this.d;
    if (!this.d.conf().voters.includes(to)) throw new NodeError('CONF_CHANGE_INVALID', `${to} is not a voter`);
    const res = raw.transferLeadership(to);
    this.d.kick();
    if (!res.ok) throw fromCoreRefusal(res.error);
    const until = clock.now() + timeoutMs;
    while (clock.now() < until && this.d.soft().leader !== to) await sleep(clock, 20);
    if (this.d.soft().leader !== to) throw new NodeError('TIMEOUT', `leadership did not move to ${to} in time`);
    return { index: raw.status().hardState.commit, leader: to };
  }

  /**
   * Adding a member that is already one changes nothing (an automation retrying after a
   * timeout must not demote a voter to learner: with another voter down, that loses the
   * quorum). The same id at another address is refused: remove it first.
   */
  private existing(id: string, address: string): AdminResult | null {
    const { raw, book } = this.d;
    const conf = raw.status().conf;
    const role = conf.voters.includes(id) ? 'voter' : conf.learners.includes(id) ? 'learner' : null;
    if (role === null) return null;
    const known = book.addressOf(id);
    const asked = parseHostPort(address);
    if (known !== undefined && asked !== null && formatHostPort(known) !== formatHostPort(asked)) {
      throw new NodeError(
        'CONF_CHANGE_INVALID',
        `${id} is already a ${role} at ${formatHostPort(known)}; remove it before adding it at another address`,
      );
    }
    return { index: raw.status().hardState.commit, existing: { role } };
  }

  /**
   * The voter a transfer without a target goes to: recently active, then the furthest log
   * (the quickest to take over). The one rule: clients ask without a target and the
   * leader, which sees every member's progress, decides.
   */
  private bestTransferee(): string {
    const voters = this.d.conf().voters;
    const candidates = this.d.raw
      .status()
      .progress.filter((p) => p.id !== this.d.id && !p.isLearner && voters.includes(p.id))
      .sort((a, b) => Number(b.recentActive) - Number(a.recentActive) || b.match - a.match || (a.id < b.id ? -1 : 1));
    const best = candidates[0];
    if (best === undefined) throw new NodeError('CONF_CHANGE_INVALID', 'no other voter to hand leadership to');
    return best.id;
  }

  /** A conf change was applied here (every node): follow the addresses, notice our own removal. */
  onApplied(cc: ConfChange, index: number): void {
    const { book, log } = this.d;
    const note = book.applied(cc);
    if (note !== null && 'unreadable' in note)
      log.error({ node: cc.node, address: note.unreadable }, 'membership change carries an unreadable address');
    if (note !== null && 'flagsDiffer' in note) {
      log.warn(
        { node: cc.node, added: note.flagsDiffer.added, dialing: formatHostPort(note.flagsDiffer.flags) },
        'member added at another address than --peers names; this node keeps dialing the --peers address (update --peers if the member moved)',
      );
    }
    if (cc.type === 'removeNode' && cc.node === this.d.id) {
      // Linger so that, as leader, we hand over and tell the others the removal is committed.
      this.removedAt = this.d.clock.now();
      log.warn({ index }, 'this node was removed from the cluster; it stops taking part shortly — stop the process');
    } else if ((cc.type === 'addVoter' || cc.type === 'addLearner') && cc.node === this.d.id) {
      // Added back (a member removed, added again and started with --join replays both from
      // the log, within milliseconds): a member again, it must not retire for the removal.
      this.removedAt = null;
    }
    this.d.setPeers(book.current);
    const conf = this.d.conf();
    log.info(
      { change: cc.type, member: cc.node, voters: conf.voters, learners: conf.learners, index },
      'membership changed',
    );
  }

  /** Removed, and `lingerMs` since (time to hand over): this node should stop taking part. */
  retired(lingerMs: number): boolean {
    return this.removedAt !== null && this.d.clock.now() - this.removedAt > lingerMs;
  }

  /** Leader: promote a learner that has caught up (one change at a time). */
  maybePromoteLearners(): void {
    if (this.d.soft().role !== 'leader' || this.d.conf().learners.length === 0) return;
    const st = this.d.raw.status();
    for (const p of st.progress) {
      if (!p.isLearner || !p.recentActive) continue;
      // Caught up means it has acknowledged appends (replicate state): a learner that never
      // answered has match 0, which a young log is within PROMOTE_WITHIN_ENTRIES of. Promoting
      // it would add a voter that is not there (a one-node cluster would lose its quorum).
      if (p.state !== 'replicate' || p.match === 0 || st.lastIndex - p.match > PROMOTE_WITHIN_ENTRIES) continue;
      const res = this.d.raw.proposeConfChange({ type: 'addVoter', node: p.id });
      if (res.ok) {
        this.d.log.info(
          { member: p.id, match: p.match, lastIndex: st.lastIndex },
          'learner caught up; promoting it to voter',
        );
        this.d.kick();
      }
      return;
    }
  }
}
