/**
 * The Raft state machine: roles, transitions and the handling of every message.
 *
 * Nothing here does I/O. Inputs are `step`, `tick`, `propose`, `readIndex`,
 * `transferLeadership`, `proposeConfChange` and the host's acknowledgements through
 * RawNode; outputs accumulate in `msgs` (may leave at once), `msgsAfterPersist` (may
 * leave only once the current hard state and unstable entries are durable) and
 * `readStates`. RawNode turns them into Ready batches.
 */
import { applyChange, encodeConfChange } from './confchange.js';
import type { Result } from './errors.js';
import { fail, ok } from './errors.js';
import { RaftLog } from './log.js';
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfState,
  Entry,
  HardState,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  NodeId,
  PiecewiseSnapshot,
  ReadState,
  Role,
  Snapshot,
  SnapshotMessage,
  SoftState,
  VoteMessage,
} from './messages.js';
import { entryBytes } from './messages.js';
import { Progress } from './progress.js';
import { committedIndex, hasQuorum, voteResult } from './quorum.js';
import type { RandomSource } from './rand.js';
import type { PendingRead } from './readonly.js';
import { ReadOnly } from './readonly.js';
import type { Storage } from './storage.js';

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: Storage;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  readonly electionTick: number;
  /** Ticks between leader heartbeats; must be well below electionTick. */
  readonly heartbeatTick: number;
  /** The only source of randomness (election jitter). Seed it for reproducible runs. */
  readonly random: RandomSource;
  /** The host's applied index at restart; committed entries after it are handed out again. */
  readonly applied?: number;
  /** Membership at `applied`, when the host keeps it more current than storage's snapshot. */
  readonly confState?: ConfState;
  readonly maxMessageBytes?: number;
  readonly maxInflightMessages?: number;
  readonly maxInflightBytes?: number;
  readonly maxCommittedBytesPerReady?: number;
  readonly snapshotChunkBytes?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /**
   * Leader only: a follower's rejection shows it lacks entries it acknowledged earlier in
   * this leadership (its log ends below its Match): its disk lost them, or its data
   * directory was wiped and it was started again. Called once per follower per term, for
   * the host to log; Raft's own handling is unchanged (the leader keeps probing at
   * Match + 1 and never backs below it, as etcd's raft does). The host must not call back
   * into the core from it.
   */
  readonly onFollowerLostEntries?: (follower: NodeId, match: number, followerLastIndex: number) => void;
}

const EMPTY = new Uint8Array(0);
/** Entry bytes an append to a follower in probe state carries at most (at least one entry). */
const MAX_PROBE_BYTES = 64 * 1024;

/** Messages a leader may send before its own append is durable: they do not vouch for its disk. */
function isLeaderTraffic(type: Message['type']): boolean {
  return (
    type === 'append' ||
    type === 'heartbeat' ||
    type === 'snapshot' ||
    type === 'timeoutNow' ||
    type === 'readIndexResponse'
  );
}

/**
 * A snapshot being received in chunks. Keyed by the sender and its term as well as the
 * snapshot: two leaders may each send the snapshot at one index, serialized differently
 * (the state is the same, the bytes need not be), and their chunks must never mix.
 */
interface SnapshotAssembly {
  readonly from: NodeId;
  readonly msgTerm: number;
  readonly index: number;
  readonly term: number;
  readonly total: number;
  readonly chunks: Map<number, Uint8Array>;
  received: number;
}

/** Whether a stored chunk shares a byte with [start, end). */
function overlapsStored(chunks: ReadonlyMap<number, Uint8Array>, start: number, end: number): boolean {
  for (const [offset, chunk] of chunks) {
    if (offset < end && start < offset + chunk.byteLength) return true;
  }
  return false;
}

/** Whether the chunks, none overlapping, cover the snapshot from its first byte to its last. */
function coversAll(asm: SnapshotAssembly): boolean {
  const offsets = [...asm.chunks.keys()].sort((a, b) => a - b);
  let next = 0;
  for (const offset of offsets) {
    if (offset !== next) return false;
    next += asm.chunks.get(offset)!.byteLength;
  }
  return next === asm.total;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = 'follower';
  readonly log: RaftLog;

  conf: ConfState;
  /** Per-member replication state; meaningful on the leader only. */
  readonly progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();

  /** Output: may be sent now. */
  msgs: Message[] = [];
  /** Output: may be sent once the current hard state and unstable entries are durable. */
  msgsAfterPersist: Message[] = [];
  readStates: ReadState[] = [];

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  leadTransferee: NodeId | null = null;
  /**
   * Index of the latest conf change entry; a new one waits until the host has applied it
   * (log.applied, from RawNode.appliedTo), not merely taken it in a Ready: until then the
   * core's configuration is the old one, and a change validated against it could undo or
   * contradict the pending one (a removed learner proposed back as a voter).
   */
  private pendingConfIndex = 0;
  private readonly readOnly = new ReadOnly();
  /** Reads that arrived before the leader committed an entry of its own term. */
  private readsAwaitingCommit: PendingRead[] = [];
  private incomingSnapshot: SnapshotAssembly | null = null;
  /** The term the host last made durable (RawNode keeps it current). */
  persistedTerm = 0;

  readonly electionTick: number;
  readonly heartbeatTick: number;
  private readonly random: RandomSource;
  private readonly maxMessageBytes: number;
  private readonly maxInflight: number;
  private readonly maxInflightBytes: number;
  readonly maxCommittedBytesPerReady: number;
  private readonly snapshotChunkBytes: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly onFollowerLostEntries: RaftConfig['onFollowerLostEntries'];

  constructor(config: RaftConfig) {
    if (config.heartbeatTick <= 0 || config.electionTick <= config.heartbeatTick) {
      throw new Error('raft: electionTick must be greater than heartbeatTick > 0');
    }
    this.id = config.id;
    this.electionTick = config.electionTick;
    this.heartbeatTick = config.heartbeatTick;
    this.random = config.random;
    this.maxMessageBytes = config.maxMessageBytes ?? 1024 * 1024;
    this.maxInflight = config.maxInflightMessages ?? 256;
    this.maxInflightBytes = config.maxInflightBytes ?? 32 * 1024 * 1024;
    this.maxCommittedBytesPerReady = config.maxCommittedBytesPerReady ?? 4 * 1024 * 1024;
    this.snapshotChunkBytes = config.snapshotChunkBytes ?? 1024 * 1024;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.onFollowerLostEntries = config.onFollowerLostEntries;

    this.log = new RaftLog(config.storage);
    const { hardState, confState } = config.storage.initialState();
    this.conf = config.confState ?? confState;
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.persistedTerm = hardState.term;
    // The commit index may be written without fsync; what the host applied was committed.
    const commit = Math.max(hardState.commit, config.applied ?? 0);
    if (commit > 0) this.log.commitTo(Math.min(commit, this.log.lastIndex()));
    if (config.applied !== undefined && config.applied > 0) {
      // Applied before the restart: neither handed out again nor waited for.
      const applied = Math.min(config.applied, this.log.committed);
      this.log.acceptApplying(applied);
      this.log.appliedTo(applied);
    }
    this.resetProgress();
    this.becomeFollower(this.term, null);
  }

  // ---- state views -----------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { role: this.role, leader: this.lead, term: this.term };
  }

  isVoter(id: NodeId): boolean {
    return this.conf.voters.includes(id);
  }

  /** Can this node become leader? Learners and removed nodes cannot. */
  promotable(): boolean {
    return this.isVoter(this.id);
  }

  // ---- sending -----------------------------------------------------------------------

  private send(m: Message): void {
    // A leader's traffic does not vouch for its disk, but it does speak for its term: until
    // that term is durable (a single voter wins the moment it campaigns) it waits, or a
    // crash could let the same term be led again with other entries.
    if (this.role === 'leader' && isLeaderTraffic(m.type) && this.term === this.persistedTerm) this.msgs.push(m);
    else if (m.type === 'readIndex' || m.type === 'preVote')
      this.msgs.push(m); // depend on nothing durable
    else if (m.type === 'heartbeatResponse' && this.term === this.persistedTerm)
      this.msgs.push(m); // vouches only for a durable term
    else this.msgsAfterPersist.push(m);
  }

  private peers(): NodeId[] {
    const out: NodeId[] = [];
    for (const id of this.progress.keys()) if (id !== this.id) out.push(id);
    return out;
  }

  /**
   * Sends an append (or a snapshot) to `to` if its progress allows. Returns whether
   * something was sent. With `sendIfEmpty` false, an append without entries is skipped.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    // A probe goes out again with every heartbeat until it is answered, and the follower
    // may not answer for long (it is installing a snapshot): a full-size probe resent 20
    // times a second cost the leader a third of a core in encoding alone. Where the logs
    // match is not known yet, so a probe carries little; replication sends full messages.
    const maxBytes = pr.state === 'probe' ? Math.min(this.maxMessageBytes, MAX_PROBE_BYTES) : this.maxMessageBytes;
    const entries = prevTerm === 'compacted' ? 'compacted' : this.log.entriesFrom(pr.next, maxBytes);
    if (prevTerm === 'compacted' || entries === 'compacted') return this.maybeSendSnapshot(to, pr);
    if (prevTerm === 'unavailable' || entries === 'unavailable') {
      throw new Error(`raft: entries for ${to} at ${pr.next} unavailable (last ${this.log.lastIndex()})`);
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    const m: AppendMessage = {
      type: 'append',
      from: this.id,
      to,
      term: this.term,
      prevIndex,
      prevTerm,
      entries,
      commit: this.log.committed,
    };
    if (entries.length > 0) {
      const last = entries[entries.length - 1]!.index;
      switch (pr.state) {
        case 'replicate': {
          let bytes = 0;
          for (const e of entries) bytes += entryBytes(e);
          pr.optimisticUpdate(last);
          pr.inflights.add(last, bytes);
          break;
        }
        case 'probe':
          pr.probeSent = true;
          break;
        case 'snapshot':
          throw new Error('raft: append sent to a follower in snapshot state');
      }
    } else if (pr.state === 'probe') {
      pr.probeSent = true;
    }
    this.send(m);
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false; // don't ship a snapshot to a node that may be down
    const snap = this.log.storage.snapshot();
    if (snap === 'unavailable') return false; // the host is preparing one; retried on a later tick
    if (snap.meta.index === 0) throw new Error('raft: need a snapshot but storage has none');
    pr.becomeSnapshot(snap.meta.index);
    this.sendSnapshotChunks(to, snap);
    return true;
  }

  /**
   * Sends the snapshot as chunks of at most snapshotChunkBytes, each piece of a piecewise
   * snapshot cut on its own (so a chunk never spans two pieces and is never a copy).
   */
  private sendSnapshotChunks(to: NodeId, snap: Snapshot | PiecewiseSnapshot): void {
    const pieces = snap.kind === 'pieces' ? snap.pieces : [snap.data];
    let total = 0;
    for (const piece of pieces) total += piece.byteLength;
    const size = this.snapshotChunkBytes;
    const chunk = (offset: number, bytes: Uint8Array): SnapshotMessage => ({
      type: 'snapshot',
      from: this.id,
      to,
      term: this.term,
      meta: snap.meta,
      offset,
      total,
      chunk: bytes,
      commit: this.log.committed,
    });
    // Empty data still goes out as one empty chunk: it is what tells the follower to install.
    if (total === 0) {
      this.send(chunk(0, new Uint8Array(0)));
      return;
    }
    let offset = 0;
    for (const piece of pieces) {
      for (let at = 0; at < piece.byteLength; at += size) {
        const bytes = piece.subarray(at, Math.min(piece.byteLength, at + size));
        this.send(chunk(offset, bytes));
        offset += bytes.byteLength;
      }
    }
  }

  private sendHeartbeat(to: NodeId, context: number): void {
    const pr = this.progress.get(to);
    // Never tell a follower to commit past what it is known to match: its log beyond
    // `match` may still hold entries that conflict with ours.
    const commit = Math.min(pr ? pr.match : 0, this.log.committed);
    const m: HeartbeatMessage = { type: 'heartbeat', from: this.id, to, term: this.term, commit, context };
    this.send(m);
  }

  private bcastAppend(): void {
    for (const id of this.peers()) this.maybeSendAppend(id, true);
  }

  private bcastHeartbeat(context: number): void {
    for (const id of this.peers()) this.sendHeartbeat(id, context);
  }

  // ---- role transitions --------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.votes = new Map();
    this.abandonReads();
    // A partial snapshot belongs to the leader and term it came from (SnapshotAssembly):
    // a new term or role starts over.
    this.incomingSnapshot = null;
    this.resetProgress();
  }

  private resetProgress(): void {
    this.progress.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of this.conf.voters)
      this.progress.set(id, new Progress(next, false, this.maxInflight, this.maxInflightBytes));
    for (const id of this.conf.learners)
      this.progress.set(id, new Progress(next, true, this.maxInflight, this.maxInflightBytes));
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTick + this.random.int(this.electionTick);
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.role = 'follower';
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: leader cannot become pre-candidate');
    // A pre-candidate changes neither term nor vote: a failed pre-election disturbs nobody.
    this.votes = new Map();
    this.role = 'preCandidate';
    this.lead = null;
    this.resetRandomizedElectionTimeout();
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    if (this.role === 'follower') throw new Error('raft: follower cannot become leader');
    this.reset(this.term);
    this.role = 'leader';
    this.lead = this.id;
    for (const pr of this.progress.values()) pr.recentActive = true;
    const self = this.progress.get(this.id);
    // Our own entries count once durable; until then our match is the stable last index.
    if (self) {
      self.becomeReplicate();
      self.match = this.stableIndex();
      self.next = this.log.lastIndex() + 1;
    }
    // Conf changes wait until the no-op below (an entry of our term) is applied.
    this.pendingConfIndex = this.log.lastIndex() + 1;
    this.appendEntries([{ index: 0, term: 0, type: 'normal', data: EMPTY }]);
    this.bcastAppend();
  }

  /** The election timeout passed without a leader: start a pre-election, or an election. */
  private hup(): void {
    if (!this.promotable()) return;
    if (this.preVote) this.startPreElection();
    else this.startElection(false);
  }

  /** §9.6: ask whether we could win before bumping the term, so a node that was cut off cannot disrupt a healthy cluster. */
  private startPreElection(): void {
    this.becomePreCandidate();
    this.requestVotes('preVote', this.term + 1, false);
  }

  /** `transfer` marks an election the old leader asked for (TimeoutNow); voters then ignore their lease. */
  private startElection(transfer: boolean): void {
    if (!this.promotable()) return;
    this.becomeCandidate();
    this.requestVotes('vote', this.term, transfer);
  }

  private requestVotes(type: 'vote' | 'preVote', term: number, transfer: boolean): void {
    this.votes.set(this.id, true);
    if (this.pollVotes() === 'won') return; // single-voter cluster
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.conf.voters) {
      if (id === this.id) continue;
      const m: VoteMessage = { type, from: this.id, to: id, term, lastIndex, lastTerm, transfer };
      this.send(m);
    }
  }

  /** Tallies votes and acts on the outcome. */
  private pollVotes(): 'won' | 'lost' | 'pending' {
    const result = voteResult(this.conf.voters, this.votes);
    if (result === 'won') {
      if (this.role === 'preCandidate') this.startElection(false);
      else this.becomeLeader();
    } else if (result === 'lost') {
      this.becomeFollower(this.term, null);
    }
    return result;
  }

  // ---- leader operations -------------------------------------------------------------

  /** Appends entries (index and term filled in) to the leader's log. */
  private appendEntries(entries: readonly Entry[]): void {
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => ({ index: ++index, term: this.term, type: e.type, data: e.data }));
    this.log.append(stamped);
    // Our own progress advances only when the host has persisted them (onPersisted).
  }

  private maybeCommit(): boolean {
    const idx = committedIndex(this.conf.voters, (id) => this.progress.get(id)?.match ?? 0);
    const committed = this.log.maybeCommit(idx, this.term);
    if (committed) this.onCommitAdvanced();
    return committed;
  }

  /** Reads waiting for an entry of our term to commit can now start their round. */
  private onCommitAdvanced(): void {
    if (this.role !== 'leader' || this.readsAwaitingCommit.length === 0) return;
    if (this.log.termOrZero(this.log.committed) !== this.term) return;
    for (const r of this.readsAwaitingCommit) this.readOnly.enqueue(r);
    this.readsAwaitingCommit = [];
  }

  propose(data: readonly Uint8Array[]): Result<{ firstIndex: number; lastIndex: number; term: number }> {
    if (this.role !== 'leader') return fail('NOT_LEADER', 'this node is not the leader', this.lead);
    if (this.leadTransferee !== null) {
      return fail('TRANSFER_IN_PROGRESS', `leadership is being transferred to ${this.leadTransferee}`, this.id);
    }
    if (!this.progress.has(this.id)) return fail('PROPOSAL_DROPPED', 'this node was removed from the cluster');
    const first = this.log.lastIndex() + 1;
    const entries: Entry[] = new Array(data.length);
    for (let i = 0; i < data.length; i++)
      entries[i] = { index: first + i, term: this.term, type: 'normal', data: data[i]! };
    this.log.append(entries);
    this.bcastAppend();
    return ok({ firstIndex: first, lastIndex: this.log.lastIndex(), term: this.term });
  }

  proposeConfChange(cc: ConfChange): Result<{ index: number; term: number }> {
    if (this.role !== 'leader') return fail('NOT_LEADER', 'this node is not the leader', this.lead);
    if (this.leadTransferee !== null) {
      return fail('TRANSFER_IN_PROGRESS', `leadership is being transferred to ${this.leadTransferee}`, this.id);
    }
    if (this.pendingConfIndex > this.log.applied) {
      return fail('CONF_CHANGE_PENDING', 'a membership change is in progress; retry when it is applied');
    }
    const check = applyChange(this.conf, cc);
    if (!check.ok) return fail('CONF_CHANGE_INVALID', check.reason);
    const index = this.log.lastIndex() + 1;
    this.appendEntries([{ index: 0, term: 0, type: 'conf', data: encodeConfChange(cc) }]);
    this.pendingConfIndex = index;
    this.bcastAppend();
    return ok({ index, term: this.term });
  }

  /** The host applied a committed conf change entry: switch to the new configuration. */
  applyConfChange(cc: ConfChange): ConfState {
    const res = applyChange(this.conf, cc);
    if (!res.ok) return this.conf; // a no-op on every node alike (validated again deterministically)
    this.conf = res.conf;
    const next = this.log.lastIndex() + 1;
    for (const id of [...this.progress.keys()]) {
      if (!res.conf.voters.includes(id) && !res.conf.learners.includes(id)) this.progress.delete(id);
    }
    for (const id of res.conf.voters) this.setProgressKind(id, false, next);
    for (const id of res.conf.learners) this.setProgressKind(id, true, next);
    if (this.role === 'candidate' || this.role === 'preCandidate') {
      // The votes we hold may be a quorum of a smaller voter set: count them now rather
      // than wait out another election timeout. Removed or demoted, we cannot win at all.
      if (this.promotable()) this.pollVotes();
      else this.becomeFollower(this.term, null);
      return this.conf;
    }
    if (this.role !== 'leader') return this.conf;
    if (!this.isVoter(this.id)) {
      // Reads in flight would be confirmed by the new voters' acknowledgements, or by
      // none at all: neither proves that this node still leads (see readIndex).
      this.abandonReads();
      this.handOver();
      return this.conf;
    }
    if (this.leadTransferee !== null && !this.isVoter(this.leadTransferee)) this.leadTransferee = null;
    // A smaller quorum may commit more (maybeCommit), and new members need appends
    // either way, so one broadcast follows whatever it decided.
    this.maybeCommit();
    this.bcastAppend();
    this.maybeReleaseReads();
    return this.conf;
  }

  /**
   * A leader that is no longer a voter steps down, but first hands leadership to the
   * most caught-up voter. Stepping down at once could strand the cluster: our log may
   * hold entries past the conf change that no voter has, so a voter that has not yet
   * learned the change is committed would ask us for a vote and be refused forever.
   */
  private handOver(): void {
    let target: NodeId | null = null;
    let best = -1;
    for (const id of this.conf.voters) {
      const pr = this.progress.get(id);
      if (pr && pr.match > best) {
        best = pr.match;
        target = id;
      }
    }
    if (target === null) {
      this.becomeFollower(this.term, null);
      return;
    }
    this.leadTransferee = null;
    this.transferLeadership(target);
  }

  private setProgressKind(id: NodeId, learner: boolean, next: number): void {
    const pr = this.progress.get(id);
    if (pr && pr.isLearner === learner) return;
    const fresh = new Progress(next, learner, this.maxInflight, this.maxInflightBytes);
    if (pr) {
      fresh.match = pr.match;
      fresh.next = pr.next;
      fresh.state = pr.state === 'snapshot' ? 'probe' : pr.state;
      if (fresh.state === 'replicate') fresh.becomeReplicate();
      fresh.recentActive = pr.recentActive;
      fresh.readAck = pr.readAck;
    } else {
      fresh.recentActive = true; // give a new member a full CheckQuorum round
    }
    if (id === this.id) fresh.match = this.stableIndex();
    this.progress.set(id, fresh);
  }

  transferLeadership(to: NodeId): Result {
    if (this.role !== 'leader') return fail('NOT_LEADER', 'only the leader can transfer leadership', this.lead);
    if (to === this.id) return ok(undefined);
    if (!this.isVoter(to)) return fail('CONF_CHANGE_INVALID', `${to} is not a voter`);
    if (this.leadTransferee === to) return ok(undefined);
    this.leadTransferee = to;
    // The transfer must finish within one election timeout or it is abandoned (tick).
    this.electionElapsed = 0;
    const pr = this.progress.get(to)!;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.maybeSendAppend(to, true);
    return ok(undefined);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term });
  }

  readIndex(context: Uint8Array): Result {
    if (this.role === 'leader') {
      if (!this.isVoter(this.id)) {
        return fail('NOT_VOTER', 'this leader was removed or demoted and is handing over; retry shortly');
      }
      this.enqueueRead({ context, from: this.id });
      return ok(undefined);
    }
    if (this.lead === null) return fail('NO_LEADER', 'no leader is known; retry shortly');
    this.send({ type: 'readIndex', from: this.id, to: this.lead, term: this.term, context });
    return ok(undefined);
  }

  private enqueueRead(read: PendingRead): void {
    // §6.4: the leader must first commit an entry of its own term to know its commit index.
    if (this.log.termOrZero(this.log.committed) !== this.term) {
      this.readsAwaitingCommit.push(read);
      return;
    }
    // Only the sole voter itself may skip the heartbeat round: its own vote is a quorum,
    // so no newer leader can exist. A leader outside the voters (removed or demoted, still
    // handing over) never gets here: the voters may already have elected a newer leader
    // that committed writes this one has not heard of (issue 15).
    if (this.conf.voters.length === 1 && this.conf.voters[0] === this.id) {
      this.releaseRead(read, this.log.committed);
      return;
    }
    this.readOnly.enqueue(read);
  }

  /** Every pending read is dropped unanswered; the hosts time them out and ask again. */
  private abandonReads(): void {
    this.readOnly.reset();
    this.readsAwaitingCommit = [];
  }

  /** Called when the host takes a Ready: one heartbeat round for every read queued since. */
  flushReadRound(): void {
    if (this.role !== 'leader') return;
    const round = this.readOnly.startRound(this.log.committed);
    if (round === null) return;
    this.progress.get(this.id)!.readAck = round.id;
    this.bcastHeartbeat(round.id);
    this.maybeReleaseReads();
  }

  hasQueuedReads(): boolean {
    return this.role === 'leader' && this.readOnly.hasQueued();
  }

  private maybeReleaseReads(): void {
    if (this.role !== 'leader') return;
    const self = this.progress.get(this.id);
    if (self) self.readAck = this.readOnly.lastRoundId();
    const confirmed = committedIndex(this.conf.voters, (id) => this.progress.get(id)?.readAck ?? 0);
    for (const round of this.readOnly.confirm(confirmed)) {
      for (const read of round.reads) this.releaseRead(read, round.index);
    }
  }

  private releaseRead(read: PendingRead, index: number): void {
    if (read.from === this.id) this.readStates.push({ index, context: read.context });
    else
      this.send({
        type: 'readIndexResponse',
        from: this.id,
        to: read.from,
        term: this.term,
        context: read.context,
        index,
      });
  }

  // ---- the host's acknowledgements ----------------------------------------------------

  /** The host made entries up to (index, term) and any snapshot durable. */
  onPersisted(index: number, term: number, snapshotIndex: number): void {
    if (snapshotIndex > 0) this.log.stableSnapTo(snapshotIndex);
    if (index > 0) this.log.stableTo(index, term);
    if (this.role !== 'leader') return;
    const self = this.progress.get(this.id);
    if (!self) return;
    if (self.maybeUpdate(this.stableIndex()) && this.maybeCommit()) this.bcastAppend();
  }

  /** Last index known durable on this node: everything below the unstable buffer. */
  private stableIndex(): number {
    return Math.min(this.log.unstable.offset - 1, this.log.lastIndex());
  }

  // ---- time ---------------------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup();
    }
  }

  /**
   * The host learned that `id`'s process is gone (for example a connection to it was
   * refused). A follower whose leader that is forgets it, which ends the leader lease (so
   * peers that learned the same grant a pre-vote), and times out within a few ticks instead
   * of a whole randomized election timeout. The followers that learned it at the same
   * moment take turns rather than drawing at random (which split one vote in five): by
   * their rank among the other voters, a few ticks apart, so the first one's vote request
   * reaches the next before its turn and resets its timer. A false report costs at most a
   * pre-vote round: followers still in the live leader's lease refuse it, and the next
   * heartbeat makes this node a follower again, term unchanged.
   */
  leaderUnreachable(id: NodeId): void {
    if (this.role !== 'follower' || this.lead !== id) return;
    this.lead = null;
    this.timeOutByRank(this.conf.voters.filter((v) => v !== id));
  }

  /**
   * The host has just started and can reach a quorum, and no leader has spoken yet (a
   * whole cluster restarted, or a single-voter cluster). Rather than each voter sitting out
   * a full randomized election timeout, they take turns as in leaderUnreachable, by rank
   * among all voters. If a leader does exist, its first message makes this node its
   * follower before the turn comes; if it is slower than that, the pre-vote is refused by
   * the voters in its lease and nothing changes.
   */
  campaignSoon(): void {
    if (this.role !== 'follower' || this.lead !== null || !this.promotable()) return;
    this.timeOutByRank(this.conf.voters);
  }

  /**
   * Brings this node's election timeout to 1 + rank × max(2, electionTick/4) ticks from now,
   * rank being its place by id among `candidates`: nodes told the same thing at the same
   * moment take turns, and the first one's vote request reaches the next before its turn.
   */
  private timeOutByRank(candidates: readonly NodeId[]): void {
    const rank = Math.max(0, [...candidates].sort().indexOf(this.id));
    const soon = 1 + rank * Math.max(2, Math.floor(this.electionTick / 4));
    this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - soon);
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTick) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        // CheckQuorum: a leader that has not heard from a quorum in an election timeout
        // steps down, so a partitioned leader stops serving (and stops expiring sessions).
        const self = this.progress.get(this.id);
        if (self) self.recentActive = true;
        if (!hasQuorum(this.conf.voters, (id) => this.progress.get(id)?.recentActive ?? false)) {
          this.becomeFollower(this.term, null);
          return;
        }
        for (const [id, pr] of this.progress) pr.recentActive = id === this.id;
      }
      if (!this.isVoter(this.id)) {
        // Removed or demoted and the hand-over did not finish in time: step down anyway.
        this.becomeFollower(this.term, null);
        return;
      }
      if (this.leadTransferee !== null) this.leadTransferee = null; // transfer timed out
    }
    for (const [id, pr] of this.progress) {
      if (pr.state === 'snapshot' && ++pr.snapshotTicks > this.electionTick * 5) {
        pr.becomeProbe(); // stalled transfer: start over
        this.maybeSendAppend(id, true);
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(0);
      // Probing followers get their append retried with the heartbeat.
      for (const id of this.peers()) {
        const pr = this.progress.get(id)!;
        if (pr.state === 'probe' && pr.match < this.log.lastIndex()) {
          pr.probeSent = false;
          this.maybeSendAppend(id, true);
        }
      }
    }
  }

  // ---- messages -----------------------------------------------------------------------

  /** Is a leader known and heard from within the election timeout? Then (pre-)votes are ignored. */
  private inLease(): boolean {
    return this.checkQuorum && this.lead !== null && this.electionElapsed < this.electionTick;
  }

  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // A node that hears from a live leader ignores disruptive campaigns (§9.6), unless
        // the leader itself asked for it (leadership transfer).
        if (!m.transfer && this.inLease()) return;
      }
      if (m.type === 'preVote') {
        // Pre-votes never change our term.
      } else if (m.type === 'preVoteResponse' && !m.reject) {
        // A granted pre-vote carries the term we would campaign in; not a newer leader.
      } else {
        const lead = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : null;
        this.becomeFollower(m.term, lead);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'append' || m.type === 'heartbeat')) {
        // A stale leader (e.g. after a partition heals) learns of our term and steps
        // down, instead of being ignored forever while it keeps its followers from voting.
        this.send({
          type: 'appendResponse',
          from: this.id,
          to: m.from,
          term: this.term,
          index: 0,
          reject: false,
          hintIndex: 0,
          hintTerm: 0,
        });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResponse', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    switch (m.type) {
      case 'vote':
      case 'preVote':
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  private handleVoteRequest(m: VoteMessage): void {
    // We may vote again for the node we already voted for (a retried request), or for
    // anyone if we have not voted and know no leader in this term, or pre-vote for any
    // future term.
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.lead === null) ||
      (m.type === 'preVote' && m.term > this.term);
    const respType = m.type === 'vote' ? 'voteResponse' : 'preVoteResponse';
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      // The response carries the request's term, so a pre-vote grant is recognised as one.
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    switch (m.type) {
      case 'appendResponse':
        if (pr) this.handleAppendResponse(m, pr);
        return;
      case 'heartbeatResponse':
        if (pr) this.handleHeartbeatResponse(m, pr);
        return;
      case 'readIndex':
        // A leader that is no longer a voter releases nothing (see readIndex). No answer
        // is the usual way a forwarded read fails (as on a leadership change): the
        // follower's host abandons the round when its leader changes or after a timeout,
        // and asks again. (A readIndexResponse has no way to say "refused".)
        if (!this.progress.has(m.from) || !this.isVoter(this.id)) return;
        this.enqueueRead({ context: m.context, from: m.from });
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Same term, another leader: impossible if election safety holds.
        throw new Error(`raft: two leaders in term ${this.term}: ${this.id} and ${m.from}`);
      default:
        return;
    }
  }

  private handleAppendResponse(m: AppendResponseMessage, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      this.maybeReportLostEntries(m, pr);
      let hint = m.hintIndex;
      if (m.hintTerm > 0) hint = this.log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      // Stale or duplicate, but it may still unpause a probing follower.
      if (oldPaused && pr.state === 'probe' && m.index >= pr.match) pr.probeSent = false;
      return;
    }
    switch (pr.state) {
      case 'probe':
        pr.becomeReplicate();
        break;
      case 'snapshot':
        if (pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case 'replicate':
        pr.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else if (oldPaused) {
      this.maybeSendAppend(m.from, true);
    }
    // Keep the pipeline full.
    while (this.maybeSendAppend(m.from, false)) {
      /* sends until paused or caught up */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  /**
   * A rejection's hint is the follower's largest index <= min(prevIndex, its last index)
   * whose term is <= prevTerm. prevIndex >= Match always, and a follower that still holds
   * the entries up to Match (which it acknowledged) finds Match itself or later; so a hint
   * below Match means its log lost acknowledged entries. (A rejection sent before the
   * acknowledgement and delivered after it in the same term reads the same: only a
   * reordering network does that, and this only reports.)
   */
  private maybeReportLostEntries(m: AppendResponseMessage, pr: Progress): void {
    if (m.hintIndex >= pr.match || pr.lostEntriesReported) return;
    pr.lostEntriesReported = true;
    this.onFollowerLostEntries?.(m.from, pr.match, m.hintIndex);
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.maybeSendAppend(m.from, true);
    if (m.context > pr.readAck) {
      pr.readAck = m.context;
      this.maybeReleaseReads();
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // A leader of our term exists (§5.2): we lost.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'voteResponse':
      case 'preVoteResponse': {
        const mine = this.role === 'candidate' ? 'voteResponse' : 'preVoteResponse';
        if (m.type !== mine) return;
        this.votes.set(m.from, !m.reject);
        this.pollVotes();
        return;
      }
      case 'timeoutNow':
        return;
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
        this.send({ type: 'heartbeatResponse', from: this.id, to: m.from, term: this.term, context: m.context });
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshotChunk(m);
        return;
      case 'timeoutNow':
        // Campaign at once, skipping pre-vote: the leader asked us to take over.
        this.startElection(true);
        return;
      case 'readIndexResponse':
        if (m.index > 0) this.readStates.push({ index: m.index, context: m.context });
        return;
      case 'readIndex':
        // A follower that thinks we lead; forward it on to the real leader if we know one.
        if (this.lead !== null && this.lead !== m.from) this.send({ ...m, to: this.lead, term: this.term });
        return;
      default:
        return;
    }
  }

  private handleAppend(m: AppendMessage): void {
    if (m.prevIndex < this.log.committed) {
      // Everything up to our commit index already matches the leader's log.
      this.send({
        type: 'appendResponse',
        from: this.id,
        to: m.from,
        term: this.term,
        index: this.log.committed,
        reject: false,
        hintIndex: 0,
        hintTerm: 0,
      });
      return;
    }
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (lastNew !== null) {
      this.send({
        type: 'appendResponse',
        from: this.id,
        to: m.from,
        term: this.term,
        index: lastNew,
        reject: false,
        hintIndex: 0,
        hintTerm: 0,
      });
      return;
    }
    // Reject with a hint: the largest index ≤ prevIndex whose term is ≤ prevTerm. The
    // leader skips back past every entry that cannot match in one round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.prevIndex, this.log.lastIndex()), m.prevTerm);
    this.send({
      type: 'appendResponse',
      from: this.id,
      to: m.from,
      term: this.term,
      index: m.prevIndex,
      reject: true,
      hintIndex: hint.index,
      hintTerm: hint.term,
    });
  }

  private handleSnapshotChunk(m: SnapshotMessage): void {
    const { index, term } = m.meta;
    if (index <= this.log.committed) {
      this.incomingSnapshot = null;
      this.send({
        type: 'appendResponse',
        from: this.id,
        to: m.from,
        term: this.term,
        index: this.log.committed,
        reject: false,
        hintIndex: 0,
        hintTerm: 0,
      });
      return;
    }
    let asm = this.incomingSnapshot;
    if (
      !asm ||
      asm.from !== m.from ||
      asm.msgTerm !== m.term ||
      asm.index !== index ||
      asm.term !== term ||
      asm.total !== m.total
    ) {
      asm = { from: m.from, msgTerm: m.term, index, term, total: m.total, chunks: new Map(), received: 0 };
      this.incomingSnapshot = asm;
    }
    const end = m.offset + m.chunk.byteLength;
    if (m.offset < 0 || end > asm.total || (m.chunk.byteLength === 0 && asm.total > 0)) return; // not part of it
    const stored = asm.chunks.get(m.offset);
    if (stored === undefined || stored.byteLength !== m.chunk.byteLength) {
      // Chunks overlapping at other offsets come from the same transfer cut another way
      // (PiecewiseSnapshot: a storage must not do that, but summing both would count bytes
      // twice and assemble data with holes): start over from this chunk.
      if (overlapsStored(asm.chunks, m.offset, end)) {
        asm = { from: m.from, msgTerm: m.term, index, term, total: m.total, chunks: new Map(), received: 0 };
        this.incomingSnapshot = asm;
      }
      asm.chunks.set(m.offset, m.chunk);
      asm.received += m.chunk.byteLength;
    }
    if (asm.received < asm.total || !coversAll(asm)) return;
    const data = new Uint8Array(asm.total);
    for (const [offset, chunk] of asm.chunks) data.set(chunk, offset);
    this.incomingSnapshot = null;
    this.restore({ meta: m.meta, data });
    // Vouch only for the snapshot index (= commit now): entries past it, kept when our
    // log already held the snapshot's last entry, were never checked against the leader.
    this.send({
      type: 'appendResponse',
      from: this.id,
      to: m.from,
      term: this.term,
      index: this.log.committed,
      reject: false,
      hintIndex: 0,
      hintTerm: 0,
    });
  }

  /** Installs a snapshot from the leader, unless our log already covers it. */
  private restore(snap: Snapshot): void {
    const { index, term } = snap.meta;
    if (index <= this.log.committed) return;
    if (this.log.matchTerm(index, term)) {
      // Our log already has the snapshot's last entry: keep the log, fast-forward commit.
      this.log.commitTo(index);
      return;
    }
    this.log.restore(snap);
    this.conf = snap.meta.conf;
    this.resetProgress();
  }
}
