/**
 * The cluster id a node belongs to, kept in the `raft` sublevel under `clusterId` (a
 * msgpack string). Node-local, like the format version: it is never replicated, and a
 * snapshot neither carries nor replaces it. The handshake refuses peers of another cluster
 * (src/transport/cluster-identity.ts).
 *
 * Who writes it, always before the node talks to any peer (docs/operations.md, "Cluster ids"):
 * - `rollcall server` founding a cluster (an empty data directory, not `--join`): every
 *   founding member derives the same id from the founding member ids and the optional
 *   `--initial-cluster-token` (foundingClusterId), as etcd derives its cluster id from
 *   --initial-cluster and --initial-cluster-token, with no message exchanged;
 * - `rollcall snapshot restore`: a new id derived from the file, `--peers` and its token
 *   (src/ops/restore.ts, restoreClusterId), or the one given;
 * - `--force-new-cluster`: a new random id (src/ops/force-new-cluster.ts);
 * - a node started empty with `--join` takes on (and writes) the id of the cluster that
 *   adds it, at its first handshake (src/node/open-data.ts).
 *
 * Absent in databases of clusters founded by builds before founding ids (and before cluster
 * ids): such a node has no id, keeps none across upgrades, and talks only to peers without
 * one, until a restore or --force-new-cluster gives its cluster one. Adding the key did not
 * change FORMAT_VERSION: builds before it never read it, and a database without it means
 * "no id".
 */
import { createHash } from 'node:crypto';
import { decode, encode } from '../codec/index.js';
import type { NodeDatabase } from './database.js';
import { ioError, StorageError } from './errors.js';
import { RAFT_KEYS } from './keys.js';

/** The stored cluster id, or null when this node has none. */
export async function readClusterId(database: NodeDatabase): Promise<string | null> {
  let raw: Uint8Array | undefined;
  try {
    raw = await database.raft.get(RAFT_KEYS.clusterId);
  } catch (err) {
    throw ioError(`reading the cluster id of ${database.dir}`, err);
  }
  if (raw === undefined) return null;
  let id: unknown;
  try {
    id = decode(raw);
  } catch (err) {
    throw new StorageError('CORRUPT_STATE', `${database.dir}: the cluster id record is not readable`, { cause: err });
  }
  if (typeof id !== 'string' || id.length === 0)
    throw new StorageError(
      'CORRUPT_STATE',
      `${database.dir}: the cluster id record holds ${JSON.stringify(id)}, not a cluster id`,
    );
  return id;
}

/** Writes the cluster id (synced). */
export async function writeClusterId(database: NodeDatabase, id: string): Promise<void> {
  try {
    await database.db.batch().put(RAFT_KEYS.clusterId, encode(id), { sublevel: database.raft }).write({ sync: true });
  } catch (err) {
    throw ioError(`writing the cluster id of ${database.dir}`, err);
  }
}

/**
 * What `--initial-cluster-token` may be (`rollcall server` and `rollcall snapshot restore`):
 * what etcd allows there, within reason.
 */
export function isClusterToken(value: string): boolean {
  return /^[\x21-\x7e]{1,256}$/.test(value);
}

/**
 * The id of a cluster that `rollcall server` founds: the same on every founding member
 * given the same member ids and `token` (the members' order does not matter), so the
 * members agree on it without talking to each other; another for other members or another
 * token. The addresses are not in it, unlike etcd's: `--peers` says how each node reaches the
 * others, and founding members may reach one peer at different addresses (NAT, a proxy;
 * docs/node.md, "Members and their addresses"). Without a token (`''`) two clusters founded with the same member
 * ids get the same id, so each founding should get its own token (a datacenter rebuilt on
 * the same addresses above all). The domain separator keeps it apart from every restore's id.
 */
export function foundingClusterId(members: Iterable<string>, token: string): string {
  const ids = [...new Set(members)].sort();
  return createHash('sha256')
    .update(`rollcall-found\0${ids.join(',')}\0${token}`)
    .digest('hex')
    .slice(0, 16);
}
