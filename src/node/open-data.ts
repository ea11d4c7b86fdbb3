/**
 * Opening what a node keeps in its data directory, in this order: for an empty directory,
 * the founding guard (founding-guard.ts: peers that say this member was already bootstrapped
 * refuse a founding or a --join before anything is written), the database and the
 * storage over it (refusing a damaged log), the founding entries and id of a new cluster, the
 * registry, the version gate, which cluster the node belongs to, and where it dials each
 * member (peer-book.ts). RollcallNode.start wires the parts around what this returns.
 */
import { readdir } from 'node:fs/promises';
import { bootstrapEntries, bootstrapHardState } from '../../raft/index.js';
import type { Logger } from '../log/index.js';
import { Registry } from '../registry/index.js';
import type { NodeDatabase } from '../storage/index.js';
import { foundingClusterId, NodeStorage, openNodeDatabase, readClusterId, writeClusterId } from '../storage/index.js';
import { ClusterIdentity } from '../transport/index.js';
import { DEFAULT_FOUNDING_PROBE_MS, guardFounding } from './founding-guard.js';
import type { NodeOptions } from './options.js';
import { PeerBook } from './peer-book.js';
import { readLegacyPeers, readMemberAddresses, smStore } from './state-store.js';
import { assertClusterVersionSupported, buildVersionOf } from './version-gate.js';

/** A node's data, open: closing `storage` closes the database too. */
export interface NodeData {
  readonly db: NodeDatabase;
  readonly storage: NodeStorage;
  readonly registry: Registry;
  /** Which cluster this node belongs to, as the peer handshake checks it. */
  readonly cluster: ClusterIdentity;
  /** The addresses this node dials: its flags first, then those members were added with. */
  readonly peers: PeerBook;
}

/**
 * Opens the node's data; on a failure closes what it opened and throws.
 * `onClusterIdStoreFailed`: storing a joiner's adopted cluster id failed later (the disk is in doubt).
 */
export async function openNodeData(
  options: NodeOptions,
  onClusterIdStoreFailed: (err: unknown) => void,
): Promise<NodeData> {
  const ids = [...options.peers.keys()].sort();
  const clusterId = foundingClusterId(ids, options.initialClusterToken ?? '');
  // Before the database is created: a refused founding leaves the directory as it found it.
  let guarded = false;
  if (await isEmptyDirectory(options.dataDir)) {
    // A joiner asks too: a peer that records it as a started member means its data was lost
    // and it was not removed first (founding-guard.ts, joinDecision).
    await guardFoundingOf(options, options.join ? null : clusterId);
    guarded = true;
  }
  const db = await openNodeDatabase(options.dataDir);
  let storage: NodeStorage | null = null;
  try {
    storage = await NodeStorage.open(db, {
      onSnapshotError: (err) => options.logger.error({ err }, 'preparing a snapshot failed'),
      // A crash left something half-done that open() finished: worth a line for whoever restarts it.
      onRecovery: (what) => options.logger.warn({ dataDir: options.dataDir }, `storage recovered at open: ${what}`),
    });
    const fresh = storage.lastIndex() === 0 && storage.initialState().hardState.term === 0;
    if (fresh && !options.join) {
      // Founding member of a new cluster: the membership is the first entries of the log,
      // and every founding member derives the same cluster id. The id first (synced), then
      // the log: a crash between the two leaves a fresh log, and the next start writes both.
      // A database left empty by a crash before that is asked about here instead.
      if (!guarded) await guardFoundingOf(options, clusterId);
      await writeClusterId(db, clusterId);
      await storage.persist({ entries: bootstrapEntries(ids), hardState: bootstrapHardState(ids) });
      options.logger.info(
        { members: ids, clusterId, withToken: options.initialClusterToken !== undefined },
        'bootstrapped a new cluster',
      );
    }
    const registry = await Registry.open(smStore(db));
    assertClusterVersionSupported(registry.clusterVersion, buildVersionOf(options.stateMachineVersion));
    // A founding member and a restored one have a cluster id (a cluster founded by an older
    // build has none, and keeps none); a joiner takes on the id of the cluster that adds it.
    const cluster = await loadClusterIdentity({
      db,
      log: options.logger,
      joining: fresh && options.join === true,
      onStoreFailed: onClusterIdStoreFailed,
    });
    // --peers wins for the ids it names; the stored records only fill in the rest.
    const peers = new PeerBook(
      options.id,
      options.peers,
      await readMemberAddresses(db),
      await readLegacyPeers(db),
      registry.conf ?? storage.initialState().confState,
    );
    return { db, storage, registry, cluster, peers };
  } catch (err) {
    if (storage) await storage.close().catch(() => undefined);
    else await db.db.close().catch(() => undefined);
    throw err;
  }
}

/** True when `dir` does not exist or holds nothing. */
async function isEmptyDirectory(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return true;
    throw err;
  }
}

/** `clusterId` null: a joiner's probe (it has no id yet, and asks about itself, not a founding). */
function guardFoundingOf(options: NodeOptions, clusterId: string | null): Promise<void> {
  return guardFounding({
    id: options.id,
    peers: options.peers,
    secret: options.secret,
    clusterId,
    mode: clusterId === null ? 'join' : 'found',
    ...(options.peerTls === undefined ? {} : { tls: options.peerTls }),
    waitMs: options.foundingProbeMs ?? DEFAULT_FOUNDING_PROBE_MS,
    logger: options.logger,
  });
}

export interface ClusterIdOptions {
  readonly db: NodeDatabase;
  readonly log: Logger;
  /** A fresh data directory started with --join: the id is the adding cluster's. */
  readonly joining: boolean;
  /** Storing an adopted id failed (the disk is in doubt). */
  onStoreFailed(err: unknown): void;
}

/**
 * Which cluster this node belongs to: the id stored in its data directory (set at the
 * founding, by a restore, --force-new-cluster or joining; src/storage/cluster-id.ts keeps
 * the record), none for a cluster founded by an older build, or, for a fresh node started
 * with --join, the id of the
 * cluster that adds it, taken on at its first handshake and stored for later starts.
 */
export async function loadClusterIdentity(o: ClusterIdOptions): Promise<ClusterIdentity> {
  const stored = await readClusterId(o.db);
  if (stored !== null || !o.joining) return ClusterIdentity.of(stored);
  return ClusterIdentity.unassigned((id) => {
    // Kept across restarts: a restarted joiner must not take on another cluster's id.
    o.log.info({ clusterId: id }, 'joined a cluster with an id; storing it');
    writeClusterId(o.db, id).catch((err: unknown) => o.onStoreFailed(err));
  });
}
