/**
 * Which cluster a node belongs to, as the handshake checks it: both sides say their
 * cluster id (`cid` in the challenge and the hello), and a connection between two
 * different clusters is refused (CLUSTER_MISMATCH) even when they share the secret and
 * the member ids. That is what keeps a member restored from a backup (which gets a new
 * cluster id: docs/operations.md) from ever talking to the cluster the backup came from,
 * and a node founded into another cluster (other members or another
 * --initial-cluster-token) from talking to one founded on the same addresses.
 *
 * Three states:
 * - `known`: the node has an id; only a peer with the same id (or a joiner) is accepted.
 * - `none`: a cluster founded by a build before founding ids (src/storage/cluster-id.ts),
 *   and never restored or forced into a new cluster since: only peers without an id (or
 *   joiners) are accepted. Such peers do not send `cid` at all, so builds before this one
 *   interoperate with them unchanged.
 * - `unassigned`: a node started empty with `--join`: it says so (`joining: true`), is
 *   accepted by any cluster (it belongs to none yet, and only the leader that adds it
 *   knows its address), takes on the id of the first member it authenticates with, and
 *   keeps it from then on.
 *
 * The id is not part of the handshake MAC: it guards against misconfiguration (a restored
 * member pointed at the old cluster's addresses), not against someone who knows the
 * secret, who can do anything already (see handshake.ts).
 */
import { TransportError } from './errors.js';

/** Cluster ids are short printable names (restore makes 16 hex digits); the cap bounds what a peer can make us log. */
export const MAX_CLUSTER_ID_LENGTH = 64;

export function isClusterId(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= MAX_CLUSTER_ID_LENGTH &&
    /^[\x21-\x7e]+$/.test(value)
  );
}

export class ClusterIdentity {
  private constructor(
    private id: string | null,
    private pending: boolean,
    private readonly onAdopt: ((id: string) => void) | undefined,
  ) {}

  /** A node of cluster `id`, or (null) of a cluster without an id. */
  static of(id: string | null): ClusterIdentity {
    if (id !== null && !isClusterId(id))
      throw new TransportError(
        'INVALID_OPTIONS',
        `cluster id ${JSON.stringify(id)} is not 1-${MAX_CLUSTER_ID_LENGTH} printable characters`,
      );
    return new ClusterIdentity(id, false, undefined);
  }

  /** A joiner that takes on the id of the first authenticated peer; `onAdopt` persists it. */
  static unassigned(onAdopt: (id: string) => void): ClusterIdentity {
    return new ClusterIdentity(null, true, onAdopt);
  }

  /** This node's cluster id (null: none, or not assigned yet). */
  get current(): string | null {
    return this.id;
  }

  get assigned(): boolean {
    return !this.pending;
  }

  /** What the handshake says about this node: its id, or that it is joining. */
  get wire(): ClusterClaim {
    if (this.pending) return { joining: true };
    return this.id === null ? {} : { cid: this.id };
  }

  /** Null when a peer that said `theirs` may talk to this node; otherwise why not. */
  check(peer: string, theirs: ClusterClaim): TransportError | null {
    if (this.pending || theirs.joining === true || (theirs.cid ?? null) === this.id) return null;
    const describe = (id: string | null) => (id === null ? 'no cluster id' : `cluster id ${id}`);
    return new TransportError(
      'CLUSTER_MISMATCH',
      `${peer} belongs to another cluster (${describe(theirs.cid ?? null)}; this node has ${describe(this.id)}): ` +
        'nodes of different clusters never talk (a restored member and the cluster its backup came from, or clusters founded with other members or another --initial-cluster-token)',
    );
  }

  /** After a peer authenticated: an unassigned node takes on its cluster id (not another joiner's lack of one). */
  adopt(theirs: ClusterClaim): void {
    if (!this.pending || theirs.joining === true) return;
    this.pending = false;
    this.id = theirs.cid ?? null;
    if (this.id !== null) this.onAdopt?.(this.id);
  }
}

/** The cluster fields of a challenge or hello: `cid` when the sender has an id, `joining` when it is unassigned. */
export interface ClusterClaim {
  readonly cid?: string;
  readonly joining?: true;
}

/** The claim in a decoded handshake message, or null when its fields are malformed. */
export function parseClaim(value: Record<string, unknown>): ClusterClaim | null {
  const { cid, joining } = value;
  if (!(cid === undefined || isClusterId(cid)) || !(joining === undefined || joining === true)) return null;
  if (cid !== undefined && joining !== undefined) return null;
  return cid !== undefined ? { cid } : joining === true ? { joining } : {};
}
