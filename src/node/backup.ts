/**
 * A consistent backup of this node's applied state (GET /v1/snapshot, `rollcall snapshot
 * save`): one LevelDB snapshot of the state machine, streamed in the backup file format
 * (src/ops/backup-stream.ts), stamped with the node that served it and its cluster id.
 */
import { type BackupOrigin, type OpenBackup, openBackup } from '../ops/backup-stream.js';
import type { NodeDatabase } from '../storage/index.js';

export function openNodeBackup(
  db: NodeDatabase,
  node: string,
  clusterId: string | null,
  now?: BackupOrigin['now'],
): Promise<OpenBackup> {
  return openBackup(db, { node, clusterId, ...(now === undefined ? {} : { now }) });
}
