/**
 * The addresses this node dials its peers at. Who is a member is replicated (the conf
 * state, through the log); where this node reaches a member is partly its own knowledge:
 * behind NAT or a sidecar proxy, nodes reach one peer by different addresses. So, as in
 * etcd (where `--initial-cluster` is per node and only runtime-added members' peer URLs
 * come from the replicated store), in this order:
 *
 * 1. `--peers` (this node's flags) wins for every id it names.
 * 2. Otherwise the address the member was added with (`POST /v1/cluster/members`): its
 *    conf change carries it, and every replica keeps the same record of them in the state
 *    machine (`\x00meta/member-addresses`, derived from the log alone), so it outlives the
 *    compaction of that entry and travels in snapshots.
 * 3. Otherwise, for a current member only, the book a build before this one kept in the
 *    state machine (`\x00meta/peers`): read-only, node-local, never sent in a snapshot nor
 *    replaced by one (SM_NODE_LOCAL_KEYS in src/storage/keys.ts).
 *
 * Members added while the cluster was at version 1 have no entry in the record (conf changes
 * wrote none then, and the raise to 2 starts it empty): from cluster version 5 the leader
 * fills those in with the addresses it dials them at (unrecorded, fill), so the record is
 * complete after an upgrade and a member that joins later (which learns the record from a
 * snapshot, and dials the others by it) reaches every member.
 *
 * Invariant: `current` never takes an id named by the flags from anywhere but the flags.
 */
import type { ConfChange, ConfState } from '../../raft/index.js';
import { encode } from '../codec/index.js';
import type { PeerAddress } from '../transport/index.js';
import { formatHostPort, parseHostPort } from '../transport/index.js';

export class PeerBook {
  /** What the transport dials: every peer this node knows, by the rules above. */
  readonly current = new Map<string, PeerAddress>();
  /** Replicated: member id -> the address it was added with (as the admin wrote it). */
  private announced: Map<string, string>;

  constructor(
    private readonly self: string,
    private readonly flags: ReadonlyMap<string, PeerAddress>,
    announced: ReadonlyMap<string, string>,
    legacy: ReadonlyMap<string, PeerAddress>,
    conf: ConfState,
  ) {
    this.announced = new Map(announced);
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const [id, address] of legacy) if (members.has(id)) this.current.set(id, address);
    this.takeAnnounced();
    for (const [id, address] of flags) this.current.set(id, address);
  }

  /** The address a member was added with, else the one this node dials (for "already a member at another address"). */
  addressOf(id: string): PeerAddress | undefined {
    const announced = this.announced.get(id);
    return (announced === undefined ? undefined : (parseHostPort(announced) ?? undefined)) ?? this.current.get(id);
  }

  /**
   * A conf change was applied (on every replica, in log order). Returns what the caller
   * should log: an address an add carries that cannot be read (the record keeps only
   * readable ones, so every replica keeps the same), or a member added at an address other
   * than the one this node's flags name (the flags still win: this node's own knowledge).
   */
  applied(cc: ConfChange): { unreadable: string } | { flagsDiffer: { flags: PeerAddress; added: string } } | null {
    if ((cc.type === 'addLearner' || cc.type === 'addVoter') && cc.context) {
      const address = parseHostPort(cc.context);
      if (address === null) return { unreadable: cc.context };
      this.announced.set(cc.node, cc.context);
      if (cc.node === this.self) return null;
      // Set even when the flags name it: a member removed and re-added is dialed again.
      const flagged = this.flags.get(cc.node);
      this.current.set(cc.node, flagged ?? address);
      if (flagged !== undefined && formatHostPort(flagged) !== formatHostPort(address))
        return { flagsDiffer: { flags: flagged, added: cc.context } };
    } else if (cc.type === 'removeNode') {
      this.announced.delete(cc.node);
      // A removed peer loses both directions at once (the transport refuses unknown ids),
      // even one the flags name; a restart with the same flags dials it again.
      if (cc.node !== this.self) this.current.delete(cc.node);
    }
    return null;
  }

  /**
   * A snapshot replaced the state machine: take its record of added members, and drop
   * peers that are no longer members unless the flags name them.
   */
  reload(announced: ReadonlyMap<string, string>, conf: ConfState): void {
    this.announced = new Map(announced);
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const id of [...this.current.keys()]) if (!members.has(id) && !this.flags.has(id)) this.current.delete(id);
    this.takeAnnounced();
    // A member the flags name that was removed and re-added since: dial it again.
    for (const [id, address] of this.flags) if (id !== this.self && members.has(id)) this.current.set(id, address);
  }

  /**
   * The cluster was raised to version 2 (src/registry/version.ts): the record starts empty,
   * the same on every replica. Before it, nothing was written, and what each node kept in
   * memory depends on when it last restarted. Where this node dials is untouched.
   */
  resetAnnounced(): void {
    this.announced = new Map();
  }

  /**
   * Current members the replicated record has no address for (added while the cluster was
   * at version 1, before conf changes wrote the record), at the address this node dials
   * them (its `--peers`; its own too): what the leader proposes to fill the record with
   * (`recordMemberAddresses`, cluster version 5). Ids sorted.
   */
  unrecorded(conf: ConfState): Map<string, string> {
    const out = new Map<string, string>();
    for (const id of [...conf.voters, ...conf.learners].sort()) {
      if (this.announced.has(id)) continue;
      const address = this.current.get(id) ?? this.flags.get(id);
      if (address !== undefined) out.set(id, formatHostPort(address));
    }
    return out;
  }

  /**
   * `recordMemberAddresses` was applied (on every replica, in log order): records each
   * address for a current member that still has none. An entry a conf change wrote is never
   * replaced, so replicas that applied the same log keep the same record. Returns whether
   * the record changed. This node dials a member it learns of here unless its flags name it.
   */
  fill(addresses: Readonly<Record<string, string>>, conf: ConfState): boolean {
    const members = new Set([...conf.voters, ...conf.learners]);
    let changed = false;
    for (const id of Object.keys(addresses).sort()) {
      const text = addresses[id]!;
      const address = parseHostPort(text);
      if (!members.has(id) || this.announced.has(id) || address === null) continue;
      this.announced.set(id, text);
      changed = true;
      if (id !== this.self && !this.flags.has(id)) this.current.set(id, address);
    }
    return changed;
  }

  /** The replicated record, encoded the same on every replica (ids sorted). */
  encodeAnnounced(): Uint8Array {
    return encode(Object.fromEntries([...this.announced].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
  }

  private takeAnnounced(): void {
    for (const [id, text] of this.announced) {
      if (id === this.self || this.flags.has(id)) continue;
      const address = parseHostPort(text);
      if (address !== null) this.current.set(id, address);
    }
  }
}
