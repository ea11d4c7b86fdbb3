/**
 * LevelDB key layout. The sublevels get LevelDB prefixes `!raft!` and `!sm!`
 * (abstract-level's sublevel prefixes); inside them:
 *
 * - `raft`: fixed ASCII names, below.
 * - `sm`:   owned by the registry; the two reserved keys below carry its applied position.
 *
 * Format 1 also had `!log!` (the Raft log) and `!raft!hardstate`, `!raft!snapshot`; since
 * format 2 those live in the WAL (wal/format.ts).
 */

export const RAFT_SUBLEVEL = 'raft';
export const SM_SUBLEVEL = 'sm';

/** Keys of the `raft` sublevel. */
export const RAFT_KEYS = {
  /** msgpack number: the on-disk format version, written when the database is created. */
  format: 'format',
  /** msgpack string: the cluster this node belongs to, if it has an id (cluster-id.ts). */
  clusterId: 'clusterId',
  /** msgpack `{by, detail, at}`: a corruption check found this node corrupt (src/ops/corruption-check.ts). */
  corruption: 'corruption',
} as const;

/**
 * Reserved `sm` key: msgpack `{ index, term }` of the last entry the state machine
 * applied, written by the registry in the same batch as the state it describes.
 */
export const SM_APPLIED_KEY = '\x00meta/applied';
/** Reserved `sm` key: msgpack ConfState as of the applied index. */
export const SM_CONF_KEY = '\x00meta/conf';
/**
 * `sm` keys that belong to this node alone: a snapshot never carries them (readStateMachine
 * leaves them out) and an install neither writes nor deletes them (replaceOps). The one so
 * far, `\x00meta/peers`, is the peer address book builds before the node's PeerBook stored
 * in the state machine, where snapshots spread one node's addresses to the others
 * (src/node/peer-book.ts).
 */
export const SM_LEGACY_PEERS_KEY = '\x00meta/peers';
const SM_NODE_LOCAL_KEYS: readonly Uint8Array[] = [new TextEncoder().encode(SM_LEGACY_PEERS_KEY)];

export function isNodeLocalSmKey(key: Uint8Array): boolean {
  return SM_NODE_LOCAL_KEYS.some((local) => bytesEqual(local, key));
}
export const SM_APPLIED_KEY_BYTES: Uint8Array = new TextEncoder().encode(SM_APPLIED_KEY);
export const SM_CONF_KEY_BYTES: Uint8Array = new TextEncoder().encode(SM_CONF_KEY);

/** LevelDB's key order (bytewise, unsigned), done natively. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
