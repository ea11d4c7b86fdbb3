/**
 * The durable storage of a Rollcall node: one LevelDB with the Raft log, the Raft state
 * and the registry's state machine under separate prefixes. See docs/storage.md.
 */
export { crc32 } from './checksum.js';
export {
  FORMAT_VERSION,
  type LogSublevel,
  type NodeDatabase,
  type RaftSublevel,
  type RootDatabase,
  type SmSublevel,
  openNodeDatabase,
} from './database.js';
export { StorageError, type StorageErrorCode } from './errors.js';
export { SM_APPLIED_KEY, SM_APPLIED_KEY_BYTES, SM_CONF_KEY, SM_CONF_KEY_BYTES, logKey, logKeyIndex } from './keys.js';
export {
  LevelStorage,
  type LevelStorageOptions,
  type PersistInput,
  type StorageStats,
} from './level-storage.js';
export { type Pair, SnapshotWriter, decodeSnapshotData } from './snapshot.js';
export { encodeApplied, encodeConfState } from './values.js';
