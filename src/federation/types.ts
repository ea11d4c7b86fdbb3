/**
 * The public data of the federation layer: what the host feeds in (its own cluster's view),
 * what it stores (the durable knowledge), and what it reads back (snapshots, routes, events,
 * refusals). Everything here is plain, readonly data; the engine keeps its own mutable state.
 */

/** A member's place in its cluster's Raft configuration (the leader is named separately). */
export type MemberRole = 'voter' | 'learner';

/**
 * A member's liveness as the failure detector sees it. At equal incarnation the order is
 * alive < suspect < unreachable: a later accusation beats an earlier all-clear, and only the
 * member itself can clear an accusation, by gossiping a higher incarnation (refutation).
 */
export type MemberStatus = 'alive' | 'suspect' | 'unreachable';

/**
 * A datacenter is alive if any member is alive, suspect if none is alive but one is suspect
 * (or none is known yet), unreachable when every known member is.
 */
export type DatacenterStatus = MemberStatus;

/** One member of a datacenter as its own cluster describes it. */
export interface MemberInfo {
  readonly id: string;
  /** The member's HTTP address as other datacenters reach it (gossip goes there too). */
  readonly address: string;
  readonly role: MemberRole;
}

/**
 * Orders the descriptions that different nodes of one datacenter publish of it; compared
 * lexicographically, the newer wins everywhere. The engine stamps it on its own datacenter's
 * description whenever the content (members, their addresses and roles, leader) changes:
 *
 * - `term`: the larger of the node's Raft term and every term already stamped on a
 *   description of this datacenter that the node published or heard. A node that has not yet
 *   learnt of a newer leader loses to one that has.
 * - `index`: a hybrid logical clock in ms: above every index this node stamped or heard for
 *   its datacenter, and at least the wall clock. So a change always beats every description
 *   the node had seen (Lamport), and beats what it published before a restart as long as
 *   its wall clock did not step back further than it was down (as with the incarnation).
 *
 * Not Raft's applied index: that stands still while peers report their addresses (nothing is
 * written), so a one-member view and the full one used to get the same version and the
 * tie-break kept the smaller one for good (issue 18).
 */
export interface DescriptorVersion {
  readonly term: number;
  readonly index: number;
}

/** What the host tells the engine about its own datacenter, from its cluster. */
export interface LocalView {
  readonly members: readonly MemberInfo[];
  /** The leader's member id, or null while there is none (or it is unknown). */
  readonly leader: string | null;
  /** The registry revision this node has applied (shown to other datacenters; cheap to gossip). */
  readonly revision: number;
  /** This node's Raft term: the engine versions the description with it (`DescriptorVersion`). */
  readonly term: number;
  /**
   * The cluster id this node belongs to (src/storage/cluster-id.ts), null for a cluster without
   * one. Gossiped with the description, so that the datacenter's members replace a description
   * left by another cluster under the same name (a rebuild, a restore): see docs/federation.md.
   * Absent: the host does not say (as null, but also not gossiped).
   */
  readonly clusterId?: string | null;
}

/**
 * What must survive a restart, stored by the host (through its cluster's log or storage) and
 * handed back at start: every other datacenter this cluster knows, with addresses to reach
 * it again. Without it a restarted cluster would forget the federation unless someone joins
 * it again.
 */
export interface FederationKnowledge {
  readonly datacenters: readonly KnownDatacenter[];
}

export interface KnownDatacenter {
  readonly name: string;
  /** A few member addresses (sorted); any one answering is enough to rejoin. */
  readonly seeds: readonly string[];
}

export interface MemberSnapshot extends MemberInfo {
  readonly status: MemberStatus;
  readonly incarnation: number;
  /** Monotonic ms (host clock) of the last authenticated message from this member, if any. */
  readonly lastHeard: number | null;
}

export interface DatacenterSnapshot {
  readonly name: string;
  readonly local: boolean;
  readonly status: DatacenterStatus;
  readonly leader: string | null;
  readonly revision: number;
  readonly version: DescriptorVersion;
  /** The cluster id its description carries; null for none, or not known (relayed by an older build). */
  readonly clusterId: string | null;
  /** Smoothed round-trip time to this datacenter in ms (EWMA); 0 for the local one, null before a sample. */
  readonly rttMs: number | null;
  /** Monotonic ms of the last authenticated message from any of its members, if any. */
  readonly lastHeard: number | null;
  readonly members: readonly MemberSnapshot[];
}

export interface FederationSnapshot {
  readonly datacenter: string;
  readonly nodeId: string;
  readonly incarnation: number;
  /** Sorted by name. */
  readonly datacenters: readonly DatacenterSnapshot[];
}

/**
 * Where to send a request for a datacenter: its live members first (leader first among them,
 * for writes), then the suspect ones; unreachable members are left out. Empty `members` with
 * status `unreachable` is the 503 case.
 */
export interface Route {
  readonly datacenter: string;
  readonly status: DatacenterStatus;
  readonly members: readonly MemberInfo[];
}

/** Why a message was refused. Nothing in the engine changes for a refused message. */
export type RefusalReason =
  /** Not an envelope at all, or a field of the wrong type or size. */
  | 'malformed'
  /** Larger than `maxMessageBytes`. */
  | 'too-large'
  /** An envelope version this build does not speak. */
  | 'unsupported-version'
  /** The MAC does not match: wrong secret, or the bytes (datacenter, id, body) were altered. */
  | 'bad-mac'
  /** Claims to come from this datacenter but names no member of it. */
  | 'forged-datacenter'
  /** Addressed to another node (a message captured on its way elsewhere and replayed here). */
  | 'wrong-recipient'
  /** Claims to come from this very node. */
  | 'from-self'
  /** Timestamp outside the window around this node's wall clock. */
  | 'stale'
  /** Same sender, same boot and sequence number seen already (or older than the window). */
  | 'replay';

export type ReceiveResult =
  | { readonly kind: 'accepted'; readonly sender: MemberRef }
  | { readonly kind: 'refused'; readonly reason: RefusalReason; readonly sender: MemberRef | null };

export interface MemberRef {
  readonly datacenter: string;
  readonly id: string;
}

/**
 * What changed, for the host to log (one line each) and to react to (persist the knowledge).
 * Drained with `drainEvents()`.
 */
export type FederationEvent =
  | {
      readonly kind: 'member-status';
      readonly datacenter: string;
      readonly id: string;
      readonly from: MemberStatus;
      readonly to: MemberStatus;
      readonly incarnation: number;
    }
  | {
      readonly kind: 'datacenter-status';
      readonly datacenter: string;
      readonly from: DatacenterStatus;
      readonly to: DatacenterStatus;
    }
  | { readonly kind: 'datacenter-discovered'; readonly datacenter: string }
  | { readonly kind: 'refuted'; readonly incarnation: number }
  | { readonly kind: 'knowledge-changed'; readonly knowledge: FederationKnowledge };

export interface FederationStats {
  readonly messagesSent: number;
  readonly bytesSent: number;
  readonly messagesReceived: number;
  readonly bytesReceived: number;
  readonly refused: Readonly<Record<RefusalReason, number>>;
  readonly probes: number;
  readonly indirectProbes: number;
  readonly suspicions: number;
  readonly refutations: number;
  /** Our datacenter's description stamped again over a leftover of another cluster or process (issue 18). */
  readonly ownRestamps: number;
  readonly syncs: number;
  /** Events dropped because the host did not drain them. */
  readonly eventsDropped: number;
}
