/**
 * The cluster id a node belongs to, kept in the `raft` sublevel under `clusterId` (a
 * msgpack string). Node-local, like the format version: it is never replicated, and a
 * snapshot neither carries nor replaces it. The handshake refuses peers of another cluster
 * (src/transport/cluster-identity.ts).
 *
 * Absent in databases of clusters founded before cluster ids and in those `rollcall
 * server` founds: such a node has no id and talks only to peers without one. `rollcall
 * snapshot restore` writes a new id into every member it prepares; a node started empty
 * with `--join` takes on (and writes) the id of the cluster that adds it. Adding the key
 * did not change FORMAT_VERSION: builds before it never read it, and a database without
 * it means "no id".
 */
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
