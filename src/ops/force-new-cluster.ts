/**
 * `rollcall server --force-new-cluster`: disaster recovery when a majority of the members
 * is lost for good (docs/operations.md, Disaster recovery). Before the node starts, its
 * data directory is rewritten into that of a one-member cluster, as etcd's
 * restartAsStandaloneNode does:
 *
 * - the log and the state machine stay as they are; conf change entries that remove every
 *   other member are appended and the commit index moves past them (raft/standalone.ts,
 *   which also explains why the survivor's uncommitted tail is kept and committed);
 * - a new cluster id is written, so the handshake refuses every member of the old cluster
 *   that comes back with its old data (src/transport/cluster-identity.ts).
 *
 * The node then starts as usual: it applies the rest of its log and the removals, elects
 * itself, and takes new members with POST /v1/cluster/members and `--join`.
 *
 * Run once: on a node that already is a one-member cluster with its whole log committed,
 * the rewrite does nothing (and keeps the cluster id), but the flag left on across later
 * restarts would cut off every member added since.
 */
import { randomBytes } from 'node:crypto';
import { type StandalonePlan, standalonePlan } from '../../raft/index.js';
import type { Logger } from '../log/index.js';
import { smStore } from '../node/state-store.js';
import { Registry } from '../registry/index.js';
import { NodeStorage, readClusterId, writeClusterId } from '../storage/index.js';

export class ForceNewClusterError extends Error {
  override readonly name = 'ForceNewClusterError';
}

export interface ForceNewClusterResult {
  /** False: the node already was a one-member cluster; nothing was written. */
  readonly rewritten: boolean;
  readonly plan: StandalonePlan;
  readonly fromClusterId: string | null;
  readonly clusterId: string | null;
}

export async function forceNewCluster(options: {
  readonly dataDir: string;
  readonly id: string;
  readonly logger: Logger;
  readonly clusterId?: string;
}): Promise<ForceNewClusterResult> {
  const storage = await NodeStorage.open(options.dataDir);
  try {
    const { hardState, confState } = storage.initialState();
    const lastIndex = storage.lastIndex();
    if (lastIndex === 0 && hardState.term === 0) {
      throw new ForceNewClusterError(
        `${options.dataDir} holds no log: --force-new-cluster recovers a member from its own data; start a new cluster without it`,
      );
    }
    const registry = await Registry.open(smStore(storage.database));
    const applied = registry.appliedIndex;
    const unapplied = lastIndex > applied ? storage.entries(applied + 1, lastIndex + 1, Number.POSITIVE_INFINITY) : [];
    if (typeof unapplied === 'string')
      throw new ForceNewClusterError(`${options.dataDir}: the log after the applied index ${applied} is ${unapplied}`);
    const appliedConf = registry.conf ?? confState;
    if (
      ![...appliedConf.voters, ...appliedConf.learners].includes(options.id) &&
      !unapplied.some((e) => e.type === 'conf')
    ) {
      throw new ForceNewClusterError(
        `${options.id} is not a member of the cluster in ${options.dataDir} (members: ${[...appliedConf.voters, ...appliedConf.learners].join(', ') || 'none'}); is --id right?`,
      );
    }
    const plan = standalonePlan({ self: options.id, appliedConf, unapplied, lastIndex, hardState });
    const fromClusterId = await readClusterId(storage.database);
    if (plan.entries.length === 0 && plan.hardState.commit === hardState.commit) {
      options.logger.warn(
        { clusterId: fromClusterId },
        '--force-new-cluster: already a one-member cluster with its log committed; nothing to do (remove the flag)',
      );
      return { rewritten: false, plan, fromClusterId, clusterId: fromClusterId };
    }
    // The id first, then entries and commit in one synced write: a crash between the two
    // leaves a new id on the old log, and the flag run again rewrites the log (and the id).
    const clusterId = options.clusterId ?? randomBytes(8).toString('hex');
    await writeClusterId(storage.database, clusterId);
    await storage.persist({ entries: plan.entries, hardState: plan.hardState });
    options.logger.warn(
      {
        members: plan.before,
        membersAfter: plan.conf,
        appliedIndex: applied,
        commitBefore: hardState.commit,
        commit: plan.hardState.commit,
        keptUncommitted: lastIndex - hardState.commit,
        fromClusterId,
        clusterId,
      },
      '--force-new-cluster: membership rewritten to this node alone, with a new cluster id; add members with POST /v1/cluster/members and --join, and remove the flag',
    );
    return { rewritten: true, plan, fromClusterId, clusterId };
  } finally {
    await storage.close();
  }
}
