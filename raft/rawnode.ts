/**
 * The host-facing API, in the style of etcd's RawNode.
 *
 * The host drives the core in a loop:
 *
 *   1. feed it: `tick()` on a timer, `step(msg)` for each message from a peer, and
 *      client work through `propose`, `readIndex`, `transferLeadership`, `proposeConfChange`;
 *   2. `const rd = node.ready()` when `hasReady()`;
 *   3. send `rd.messages` (they do not depend on this node's disk);
 *   4. make `rd.snapshot`, `rd.entries` and `rd.hardState` durable (fsync when `rd.mustSync`);
 *   5. `const acks = node.advance(rd)` and send `acks`: votes and append acknowledgements,
 *      which exist only once the host says the write is durable, so they cannot leave early;
 *   6. apply `rd.snapshot` and then `rd.committedEntries` in order (calling
 *      `applyConfChange` for conf entries), tell the core with `appliedTo(index)`, and
 *      serve `rd.readStates` once applied.
 *
 * Only one Ready is outstanding at a time: `ready()` throws until `advance()`. Applying
 * may overlap the write and go on after `advance()` (entries already durable locally may
 * even be applied before it); the core counts an entry applied only at `appliedTo`.
 */
import { decodeConfChange, encodeConfChange } from './confchange.js';
import type { Result } from './errors.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ReadState,
  Snapshot,
  SoftState,
} from './messages.js';
import type { ProgressState } from './progress.js';
import type { RaftConfig } from './raft.js';
import { Raft } from './raft.js';

export interface Ready {
  /** Present when role, leader or term changed since the last Ready. */
  readonly softState: SoftState | null;
  /** Present when it changed; persist it (with the entries, in one write). */
  readonly hardState: HardState | null;
  /** Append to stable storage, replacing any entries from entries[0].index on. */
  readonly entries: readonly Entry[];
  /** A snapshot from the leader to install in storage and in the state machine. */
  readonly snapshot: Snapshot | null;
  /** Whether the write must be fsynced before advance() (new entries, term or vote). */
  readonly mustSync: boolean;
  /** Messages that may be sent at once, in parallel with the write. */
  readonly messages: readonly Message[];
  /** Committed entries to apply, in order, after `snapshot`. */
  readonly committedEntries: readonly Entry[];
  /** Linearizable read points: serve each read once the state machine has applied its index. */
  readonly readStates: readonly ReadState[];
}

export interface MemberStatus {
  readonly id: NodeId;
  readonly isLearner: boolean;
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly recentActive: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  /** The host's applied index as it acknowledged it (`appliedTo`, or a snapshot installed). */
  readonly applied: number;
  readonly lastIndex: number;
  readonly firstIndex: number;
  readonly conf: ConfState;
  readonly leadTransferee: NodeId | null;
  /** The leader's view of each member; empty on followers. */
  readonly progress: readonly MemberStatus[];
}

export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: { ready: Ready; held: Message[] } | null = null;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  step(message: Message): void {
    this.raft.step(message);
  }

  /** Proposes one entry. On a follower: NOT_LEADER with the leader to forward to. */
  propose(data: Uint8Array): Result<{ firstIndex: number; lastIndex: number; term: number }> {
    return this.raft.propose([data]);
  }

  /** Proposes several entries at once (one append, one fsync on every node). */
  proposeBatch(data: readonly Uint8Array[]): Result<{ firstIndex: number; lastIndex: number; term: number }> {
    return this.raft.propose(data);
  }

  /**
   * Asks for a linearizable read point. The answer arrives as a ReadState with the
   * same context in a later Ready; a read that never gets one (leadership changed,
   * message lost) must be timed out and retried by the host.
   */
  readIndex(context: Uint8Array): Result {
    return this.raft.readIndex(context);
  }

  transferLeadership(to: NodeId): Result {
    return this.raft.transferLeadership(to);
  }

  proposeConfChange(change: ConfChange): Result<{ index: number; term: number }> {
    return this.raft.proposeConfChange(change);
  }

  /** Applies a committed conf change entry and returns the membership now in force. */
  applyConfChange(change: ConfChange): ConfState {
    return this.raft.applyConfChange(change);
  }

  /**
   * The host has applied every committed entry up to `index` to its state machine, conf
   * changes through `applyConfChange`. Call it after applying the entries of a Ready (at
   * any time after `ready()` handed them out, before or after `advance()`).
   *
   * The leader takes a new conf change only once the previous one is applied by this
   * measure (`CONF_CHANGE_PENDING` until then), so a change is never validated against a
   * configuration the host is about to replace; `status().applied` reports it. A leader
   * whose host never calls it refuses every conf change. An index at or below the
   * one already acknowledged is ignored; one past what Readies handed out throws.
   *
   * @example
   * ```ts
   * for (const e of rd.committedEntries) {
   *   if (e.type === 'conf') conf = node.applyConfChange(decodeConfChange(e.data));
   *   else stateMachine.apply(e);
   * }
   * const last = rd.committedEntries[rd.committedEntries.length - 1];
   * if (last) node.appliedTo(last.index);
   * ```
   */
  appliedTo(index: number): void {
    const log = this.raft.log;
    if (index <= log.applied) return;
    if (index > log.applying) {
      throw new Error(`raft: appliedTo(${index}) past the last entry handed out for applying (${log.applying})`);
    }
    log.appliedTo(index);
  }

  /**
   * Forces an election now, as leadership transfer does: it skips PreVote and voters'
   * leader lease, so it can depose a healthy leader. For tests, benchmarks and a
   * single-node cluster at boot; normal elections come from tick().
   */
  campaign(): void {
    this.raft.step({ type: 'timeoutNow', from: this.raft.id, to: this.raft.id, term: this.raft.term });
  }

  /**
   * Tells the core that node `id`'s process is gone. A follower led by it leaves the leader
   * lease and campaigns after 1 + rank × max(2, electionTick/4) ticks, rank being its place
   * among the other voters by id (so followers told together take turns instead of
   * splitting the vote). Report it only on evidence that the
   * process is gone (a refused connection), not on silence: silence is what the election
   * timeout is for.
   */
  leaderUnreachable(id: NodeId): void {
    this.raft.leaderUnreachable(id);
  }

  /**
   * Tells the core that this node has just started, can reach a quorum of voters, and has
   * heard from no leader: a voter campaigns after 1 + rank × max(2, electionTick/4) ticks
   * (rank by id among all voters) instead of a whole randomized election timeout, as etcd's
   * initial election tick advance. Harmless if a leader exists (pre-vote and its lease).
   */
  campaignSoon(): void {
    this.raft.campaignSoon();
  }

  /** Role, leader and term as the core has them now (a Ready reports them only when taken). */
  softState(): SoftState {
    return this.raft.softState();
  }

  /**
   * Takes the messages that may leave at once (a leader's heartbeats and appends, pre-votes,
   * read requests, heartbeat responses for a durable term) without waiting for the next
   * Ready. A host whose Ready loop is held up (a slow fsync, a long apply or compaction)
   * calls it after `tick()` and `step()`, so its heartbeats keep followers from electing
   * and a follower keeps answering its leader. Messages that depend on durable state stay
   * behind for `advance()`. Safe with a Ready outstanding: those messages were handed out
   * with it.
   */
  takeMessages(): readonly Message[] {
    const r = this.raft;
    if (r.msgs.length === 0) return [];
    const out = r.msgs;
    r.msgs = [];
    return out;
  }

  hasReady(): boolean {
    if (this.outstanding !== null) return false;
    const r = this.raft;
    const soft = r.softState();
    if (soft.role !== this.prevSoft.role || soft.leader !== this.prevSoft.leader || soft.term !== this.prevSoft.term)
      return true;
    const hard = r.hardState();
    if (hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote || hard.commit !== this.prevHard.commit)
      return true;
    return (
      r.log.unstable.entries.length > 0 ||
      r.log.unstable.snapshot !== null ||
      r.msgs.length > 0 ||
      r.msgsAfterPersist.length > 0 ||
      r.readStates.length > 0 ||
      r.log.hasNextCommittedEntries() ||
      r.hasQueuedReads()
    );
  }

  ready(): Ready {
    if (this.outstanding !== null) throw new Error('raft: ready() called before advance() of the previous Ready');
    const r = this.raft;
    r.flushReadRound();
    const soft = r.softState();
    const hard = r.hardState();
    const softChanged =
      soft.role !== this.prevSoft.role || soft.leader !== this.prevSoft.leader || soft.term !== this.prevSoft.term;
    const hardChanged =
      hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote || hard.commit !== this.prevHard.commit;
    const entries = r.log.unstable.entries.slice();
    const snapshot = r.log.unstable.snapshot;
    const committedEntries = r.log.hasNextCommittedEntries()
      ? r.log.nextCommittedEntries(r.maxCommittedBytesPerReady)
      : [];
    // Handed out now: the host may apply (and acknowledge) them before advance().
    if (snapshot && snapshot.meta.index > r.log.applying) r.log.acceptApplying(snapshot.meta.index);
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted) r.log.acceptApplying(lastCommitted.index);
    const ready: Ready = {
      softState: softChanged ? soft : null,
      hardState: hardChanged ? hard : null,
      entries,
      snapshot,
      mustSync:
        entries.length > 0 || snapshot !== null || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote,
      messages: r.msgs,
      committedEntries,
      readStates: r.readStates,
    };
    this.outstanding = { ready, held: r.msgsAfterPersist };
    r.msgs = [];
    r.msgsAfterPersist = [];
    r.readStates = [];
    if (softChanged) this.prevSoft = soft;
    return ready;
  }

  /**
   * The host has made `rd` durable (and installed `rd.snapshot`, which counts as applied).
   * Its committed entries count as applied only once the host says so (`appliedTo`).
   * Returns the messages that were waiting for the write: send them now.
   */
  advance(rd: Ready): readonly Message[] {
    const out = this.outstanding;
    if (out === null || out.ready !== rd) throw new Error('raft: advance() of a Ready that is not outstanding');
    this.outstanding = null;
    const r = this.raft;
    if (rd.hardState) {
      this.prevHard = rd.hardState;
      r.persistedTerm = rd.hardState.term;
    }
    const last = rd.entries[rd.entries.length - 1];
    const snapIndex = rd.snapshot ? rd.snapshot.meta.index : 0;
    if (last || snapIndex > 0) r.onPersisted(last ? last.index : 0, last ? last.term : 0, snapIndex);
    if (snapIndex > r.log.applied) r.log.appliedTo(snapIndex);
    return out.held;
  }

  status(): Status {
    const r = this.raft;
    const progress: MemberStatus[] = [];
    if (r.role === 'leader') {
      for (const [id, pr] of r.progress) {
        progress.push({
          id,
          isLearner: pr.isLearner,
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
        });
      }
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
      conf: r.conf,
      leadTransferee: r.leadTransferee,
      progress,
    };
  }

  /** The term of the entry at `index` in this node's log, durable or not (for hosts' checks and tests). */
  termAt(index: number): number | 'compacted' | 'unavailable' {
    return this.raft.log.term(index);
  }
}

export { decodeConfChange, encodeConfChange };
