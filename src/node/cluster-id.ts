/**
 * Which cluster this node belongs to, as the peer handshake checks it: the id stored in
 * its data directory (set by a restore or by joining), none for a cluster bootstrapped
 * without one, or, for a fresh node started with --join, the id of the cluster that adds
 * it, taken on at its first handshake and stored for later starts.
 */
import type { Logger } from '../log/index.js';
import type { NodeDatabase } from '../storage/index.js';
import { readClusterId, writeClusterId } from '../storage/index.js';
import { ClusterIdentity } from '../transport/index.js';

export interface ClusterIdOptions {
  readonly db: NodeDatabase;
  readonly log: Logger;
  /** A fresh data directory started with --join: the id is the adding cluster's. */
  readonly joining: boolean;
  /** Storing an adopted id failed (the disk is in doubt). */
  onStoreFailed(err: unknown): void;
}

export async function loadClusterIdentity(o: ClusterIdOptions): Promise<ClusterIdentity> {
  const stored = await readClusterId(o.db);
  if (stored !== null || !o.joining) return ClusterIdentity.of(stored);
  return ClusterIdentity.unassigned((id) => {
    // Kept across restarts: a restarted joiner must not take on another cluster's id.
    o.log.info({ clusterId: id }, 'joined a cluster with an id; storing it');
    writeClusterId(o.db, id).catch((err: unknown) => o.onStoreFailed(err));
  });
}
