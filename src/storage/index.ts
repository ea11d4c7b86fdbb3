/**
 * The durable storage of a Rollcall node: the Raft log and Raft state in an append-only
 * WAL, the registry's state machine in LevelDB. See docs/storage.md.
 */
export { crc32 } from './checksum.js';
export { readClusterId, writeClusterId } from './cluster-id.js';
export {
  FORMAT_VERSION,
  type NodeDatabase,
  type RaftSublevel,
  type RootDatabase,
  type SmSublevel,
  openNodeDatabase,
} from './database.js';
export { StorageError, type StorageErrorCode } from './errors.js';
export { SM_APPLIED_KEY, SM_APPLIED_KEY_BYTES, SM_CONF_KEY, SM_CONF_KEY_BYTES, SM_LEGACY_PEERS_KEY, isNodeLocalSmKey } from './keys.js';
export {
  NodeStorage,
  type NodeStorageOptions,
  type PersistInput,
  type StorageStats,
} from './node-storage.js';
export { SCAN_BATCH, type Scannable, scanBatches } from './scan.js';
export { type Pair, type SmOp, SnapshotWriter, decodeSnapshotData, replaceOps } from './snapshot.js';
export { DEFAULT_SEGMENT_BYTES, syncDir, type WalOptions, walDir } from './wal/wal.js';
export { type WalEntryLocation, locateWalEntry } from './wal/inspect.js';
export { encodeApplied, encodeConfState } from './values.js';
