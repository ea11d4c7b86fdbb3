/**
 * The data the Raft core exchanges with its host and with its peers.
 *
 * Everything here is plain, immutable data so that it can be encoded with msgpackr,
 * compared in tests and replayed by the simulator.
 */

/** A node's identity; stable for the node's lifetime and unique in the cluster. */
export type NodeId = string;

/** `normal` carries host data (empty data = the leader's no-op); `conf` carries an encoded {@link ConfChange}. */
export type EntryType = 'normal' | 'conf';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before this node answers anyone: Raft §5 "persistent state on all servers". */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** Voters decide elections and commits; learners only receive the log. The two sets are disjoint. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** `context` is opaque host data replicated with the change (e.g. the new member's address). */
export type ConfChange =
  | { readonly type: 'addVoter'; readonly node: NodeId; readonly context?: string }
  | { readonly type: 'addLearner'; readonly node: NodeId; readonly context?: string }
  | { readonly type: 'removeNode'; readonly node: NodeId; readonly context?: string };

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

export interface Snapshot {
  /** Absent or 'whole': the data in one array (tells it from a PiecewiseSnapshot). */
  readonly kind?: 'whole';
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/**
 * A snapshot whose data is the concatenation of `pieces`, in order, as storage may serve
 * it to be sent: a host that prepares a large snapshot in pieces need not copy them into
 * one array first (hundreds of MB for a large state machine). The leader sends each piece
 * as one chunk or more (a piece longer than the chunk size is cut); the follower
 * assembles the chunks by offset as for any snapshot, so the receiver cannot tell.
 *
 * What storage must keep to:
 * - One storage always cuts the snapshot at a given index the same way (the same pieces
 *   every time it serves it). A transfer is known by its sender, term, snapshot index and
 *   term and total size, not by its cuts: a follower holding chunks of one layout that
 *   gets chunks of another would find them overlapping. It starts its assembly over
 *   then (so a transfer cut two ways is received, only later), and the leader's pacer
 *   skips chunks below what it queued of the same transfer already.
 * - A piece is never written after it was handed out: the leader sends views of it, not
 *   copies, and they may sit in a socket's queue for seconds.
 */
export interface PiecewiseSnapshot {
  readonly kind: 'pieces';
  readonly meta: SnapshotMeta;
  readonly pieces: readonly Uint8Array[];
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state the host may want to show or act on (e.g. forward writes to the leader). */
export interface SoftState {
  readonly role: Role;
  readonly leader: NodeId | null;
  readonly term: number;
}

/**
 * A linearizable read point: once the host has applied `index`, a read that began
 * when `context` was requested may be served from local state.
 */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** Leader → follower: entries after (prevIndex, prevTerm), and the leader's commit index. */
export interface AppendMessage extends Envelope {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Follower → leader. On success `index` is the last index now known to match the leader.
 * On rejection `index` is the rejected prevIndex and (hintIndex, hintTerm) let the leader
 * skip a whole term of conflicting entries at once (fast backtracking).
 */
export interface AppendResponseMessage extends Envelope {
  readonly type: 'appendResponse';
  readonly index: number;
  readonly reject: boolean;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** `context` is set when the heartbeat confirms leadership for a batch of ReadIndex requests. */
export interface HeartbeatMessage extends Envelope {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly context: number;
}

export interface HeartbeatResponseMessage extends Envelope {
  readonly type: 'heartbeatResponse';
  readonly context: number;
}

/**
 * Pre-vote and vote requests. A pre-vote carries the term the sender *would* campaign in
 * and changes no state on the receiver. `transfer` marks a campaign started by
 * leadership transfer, which may disrupt a live leader.
 */
export interface VoteMessage extends Envelope {
  readonly type: 'vote' | 'preVote';
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly transfer: boolean;
}

/** Carries the term of the request it answers when granted (so a pre-vote grant is not mistaken for a newer leader). */
export interface VoteResponseMessage extends Envelope {
  readonly type: 'voteResponse' | 'preVoteResponse';
  readonly reject: boolean;
}

/**
 * One chunk of a snapshot. Chunks of the same snapshot share `meta`; the receiver
 * assembles them by `offset` (so loss, duplication and reordering are harmless) and
 * installs the snapshot when `total` bytes have arrived.
 */
export interface SnapshotMessage extends Envelope {
  readonly type: 'snapshot';
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly total: number;
  readonly chunk: Uint8Array;
  readonly commit: number;
}

/** A follower asks the leader for a read index on behalf of a local reader. */
export interface ReadIndexMessage extends Envelope {
  readonly type: 'readIndex';
  readonly context: Uint8Array;
}

export interface ReadIndexResponseMessage extends Envelope {
  readonly type: 'readIndexResponse';
  readonly context: Uint8Array;
  /** 0 when the leader could not serve the read (e.g. no entry of its term committed yet). */
  readonly index: number;
}

/** Leadership transfer: the target should campaign at once. */
export interface TimeoutNowMessage extends Envelope {
  readonly type: 'timeoutNow';
}

export type Message =
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | SnapshotMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage
  | TimeoutNowMessage;

export type MessageType = Message['type'];

/** Bytes a message costs on the wire, roughly; used for batching limits. */
export function entryBytes(e: Entry): number {
  return e.data.byteLength + 24;
}
