/**
 * The durable storage of a Rollcall node: the Raft log and Raft state in an append-only
 * WAL, the registry's state machine in LevelDB. See docs/storage.md.
 */
export { crc32 } from './checksum.js';
export { foundingClusterId, isClusterToken, readClusterId, writeClusterId } from './cluster-id.js';
export {
  FORMAT_VERSION,
  type NodeDatabase,
  openNodeDatabase,
  type RaftSublevel,
  type RootDatabase,
  readFormatVersion,
  type SmSublevel,
} from './database.js';
export { StorageError, type StorageErrorCode } from './errors.js';
export {
  isNodeLocalSmKey,
  SM_APPLIED_KEY,
  SM_APPLIED_KEY_BYTES,
  SM_CONF_KEY,
  SM_CONF_KEY_BYTES,
  SM_LEGACY_PEERS_KEY,
} from './keys.js';
export {
  NodeStorage,
  type NodeStorageOptions,
  type PersistInput,
  type StorageStats,
} from './node-storage.js';
export { SCAN_BATCH, type Scannable, scanBatches } from './scan.js';
export {
  decodeSnapshotData,
  joinPieces,
  type Pair,
  replaceOps,
  type SmOp,
  SnapshotWriter,
  snapshotBytes,
} from './snapshot.js';
export { encodeApplied, encodeConfState } from './values.js';
export { locateWalEntry, type WalEntryLocation } from './wal/inspect.js';
export { DEFAULT_SEGMENT_BYTES, syncDir, type WalOptions, walDir } from './wal/wal.js';
