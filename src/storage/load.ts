/**
 * Reads a node's durable Raft state at open and verifies all of it: hard state and
 * snapshot meta against their checksums, and every log entry against its checksum, its
 * key and its place in a contiguous log starting right after the snapshot index.
 */
import type { Entry, HardState, SnapshotMeta } from '../../raft/messages.js';
import { emptyHardState } from '../../raft/storage.js';
import type { NodeDatabase } from './database.js';
import { StorageError, ioError } from './errors.js';
import { RAFT_KEYS, logKeyIndex } from './keys.js';
import { decodeEntry, decodeHardState, decodeSnapshotMeta } from './values.js';

export interface NodeState {
  readonly hardState: HardState;
  readonly snapMeta: SnapshotMeta;
  /** Entries snapMeta.index+1 … last, verified. */
  readonly entries: Entry[];
}

const ITERATOR_BATCH = 1024;

export async function loadNodeState(database: NodeDatabase): Promise<NodeState> {
  const { dir, raft } = database;
  let hsBytes: Uint8Array | undefined;
  let metaBytes: Uint8Array | undefined;
  try {
    [hsBytes, metaBytes] = await raft.getMany([RAFT_KEYS.hardState, RAFT_KEYS.snapshotMeta]);
  } catch (err) {
    throw ioError(`reading the raft state of ${dir}`, err);
  }
  let hardState = emptyHardState;
  if (hsBytes !== undefined) {
    const hs = decodeHardState(hsBytes);
    if (typeof hs === 'string') throw new StorageError('CORRUPT_STATE', `${dir}: the stored hard state is damaged: ${hs}`);
    hardState = hs;
  }
  let snapMeta: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };
  if (metaBytes !== undefined) {
    const meta = decodeSnapshotMeta(metaBytes);
    if (typeof meta === 'string') {
      throw new StorageError('CORRUPT_STATE', `${dir}: the stored snapshot meta is damaged: ${meta}`);
    }
    snapMeta = meta;
  }
  const { entries, stale } = await loadLog(database, snapMeta.index);
  if (stale.length > 0) {
    // Entries at or below the snapshot index cannot be left by our own batches; drop them
    // so that later range deletions (which start at the snapshot index) never miss one.
    try {
      const batch = database.db.batch();
      for (const key of stale) batch.del(key, { sublevel: database.log });
      await batch.write({ sync: true });
    } catch (err) {
      throw ioError(`deleting compacted log entries in ${dir}`, err);
    }
  }
  return { hardState, snapMeta, entries };
}

async function loadLog(database: NodeDatabase, snapIndex: number): Promise<{ entries: Entry[]; stale: Uint8Array[] }> {
  const { dir, log } = database;
  const entries: Entry[] = [];
  const stale: Uint8Array[] = [];
  let expected = snapIndex + 1;
  const it = log.iterator();
  try {
    for (;;) {
      let batch: [Uint8Array, Uint8Array][];
      try {
        batch = await it.nextv(ITERATOR_BATCH);
      } catch (err) {
        throw ioError(`reading the log of ${dir}`, err);
      }
      if (batch.length === 0) break;
      for (const [key, value] of batch) {
        const index = logKeyIndex(key);
        if (index === undefined) {
          throw new StorageError(
            'CORRUPT_ENTRY',
            `${dir}: a log key of ${key.byteLength} bytes follows entry ${expected - 1}; refusing to start`,
            { index: expected },
          );
        }
        const decoded = decodeEntry(value);
        if (!decoded.ok) {
          throw new StorageError('CORRUPT_ENTRY', `${dir}: log entry ${index} is damaged (${decoded.reason}); refusing to start`, {
            index,
          });
        }
        if (decoded.entry.index !== index) {
          throw new StorageError(
            'CORRUPT_ENTRY',
            `${dir}: log entry ${index} holds the entry of index ${decoded.entry.index}; refusing to start`,
            { index },
          );
        }
        if (index <= snapIndex) {
          stale.push(key);
          continue;
        }
        if (index !== expected) {
          throw new StorageError('LOG_GAP', `${dir}: log entry ${expected} is missing (next stored is ${index}); refusing to start`, {
            index: expected,
          });
        }
        entries.push(decoded.entry);
        expected++;
      }
    }
  } finally {
    await it.close();
  }
  return { entries, stale };
}
