/**
 * What nodes say to each other: Raft messages, and client work a follower forwards to
 * the leader (proposals and keepalives), with the leader's answers. Read-index requests
 * travel inside Raft itself.
 */
import type { Message } from '../../raft/index.js';
import type { HealthReport } from '../health/index.js';
import type { CorruptionMark, StateHash } from '../ops/corruption-check.js';
import type { CommandResult, Instance, KeepaliveOutcome } from '../registry/index.js';

export type PeerMessage =
  | { readonly kind: 'raft'; readonly msg: Message }
  | { readonly kind: 'propose'; readonly req: number; readonly data: Uint8Array }
  | { readonly kind: 'proposeResult'; readonly req: number; readonly outcome: ForwardOutcome<ProposalResult> }
  | { readonly kind: 'keepalive'; readonly req: number; readonly sessionId: string; readonly report?: HealthReport }
  | { readonly kind: 'keepaliveResult'; readonly req: number; readonly outcome: ForwardOutcome<KeepaliveOutcome> }
  | { readonly kind: 'status'; readonly status: PeerStatus }
  | { readonly kind: 'admin'; readonly req: number; readonly op: AdminOp }
  | { readonly kind: 'adminResult'; readonly req: number; readonly outcome: ForwardOutcome<AdminResult> }
  /** Corruption check (src/ops/corruption-check.ts): hash your state machine once you have applied `index`. */
  | { readonly kind: 'hashRequest'; readonly req: number; readonly index: number }
  | { readonly kind: 'hashResult'; readonly req: number; readonly outcome: ForwardOutcome<StateHash> }
  /** A check found the receiver's state machine corrupt: it stops serving reads. */
  | { readonly kind: 'corrupt'; readonly detail: string }
  /** An operator's disarm (POST /v1/cluster/check/disarm through the sender): clear your corruption mark. */
  | { readonly kind: 'disarm'; readonly req: number }
  /** The mark the receiver of a `disarm` cleared (null: it had none). */
  | { readonly kind: 'disarmResult'; readonly req: number; readonly outcome: ForwardOutcome<CorruptionMark | null> }
  /** These members cleared their marks in a disarm the sender relayed: alerts naming them resolve (no answer). */
  | { readonly kind: 'disarmed'; readonly members: readonly string[] };

/** Cluster operations a follower forwards to the leader. */
export type AdminOp =
  | { readonly type: 'addMember'; readonly id: string; readonly address: string }
  | { readonly type: 'removeMember'; readonly id: string }
  /** Without `to`, the leader picks the voter whose log is furthest along (and that it has heard from recently). */
  | { readonly type: 'transfer'; readonly to?: string };

export interface AdminResult {
  readonly index: number;
  /** For a transfer: the new leader. */
  readonly leader?: string;
  /** For an add: the member was already there (nothing changed), and what it is. */
  readonly existing?: { readonly role: 'voter' | 'learner' };
}

/** What each node tells the others about itself every status interval, for /v1/cluster. */
export interface PeerStatus {
  readonly role: string;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly http: string | null;
  /** The slowest slow Raft write (over 500 ms) of the last 30 s, 0 if none: whose disk is slow. Absent from older builds. */
  readonly slowestWriteMs?: number;
  /** The state-machine version this node's build implements (src/registry/version.ts). Absent from older builds: they count as 1. */
  readonly stateMachineVersion?: number;
}

export interface ProposalResult {
  readonly index: number;
  readonly result: CommandResult;
  /**
   * For register and update: the instance exactly as this command left it (null if it
   * no longer existed). Read at apply time, because by the time the caller sees the
   * answer later commands may have changed the instance again.
   */
  readonly instance?: Instance | null;
}

export type ForwardOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: string; readonly message: string; readonly leader: string | null };

/** A peer message's kind for the test fault hook: `raft:<type>` or the node message's kind. */
export function peerMessageKind(m: PeerMessage): string {
  return m.kind === 'raft' ? `raft:${m.msg.type}` : m.kind;
}
