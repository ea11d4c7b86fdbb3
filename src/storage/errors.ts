/**
 * Every storage failure carries a stable code, so the node can branch on `code` (refuse
 * to start, ask the leader for a snapshot, crash and restart) instead of parsing messages.
 */
export type StorageErrorCode =
  /** A log entry failed its checksum or could not be decoded; `index` names it. */
  | 'CORRUPT_ENTRY'
  /** Hard state or snapshot metadata failed its checksum or could not be decoded. */
  | 'CORRUPT_STATE'
  /** Snapshot data is damaged or does not match its metadata. */
  | 'CORRUPT_SNAPSHOT'
  /** The stored log is not contiguous from the snapshot index; `index` is the first missing one. */
  | 'LOG_GAP'
  /** The database (or snapshot data) was written in a format version this build does not know. */
  | 'UNKNOWN_FORMAT'
  /** The database was written by a newer build, in a higher format version than this build reads. */
  | 'FORMAT_TOO_NEW'
  /** The database is in an older format, and this open (a tool's, not a node's start) does not migrate it. */
  | 'FORMAT_TOO_OLD'
  /** applySnapshot with a snapshot that is not newer than the current one. */
  | 'SNAPSHOT_OUT_OF_DATE'
  /** The state machine holds applied metadata without the matching configuration. */
  | 'INVALID_STATE_MACHINE'
  /** The caller broke the contract (append leaving a gap, compact beyond the last index). */
  | 'INVALID_ARGUMENT'
  /** Another process holds the database lock. */
  | 'LOCKED'
  /** LevelDB failed to open, read or write; see `cause`. */
  | 'IO'
  /** An earlier write failed: what is on disk is uncertain, so the node must restart. */
  | 'FAILED'
  /** The storage was closed. */
  | 'CLOSED';

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  /** The log index concerned, for CORRUPT_ENTRY and LOG_GAP. */
  readonly index: number | undefined;

  constructor(code: StorageErrorCode, message: string, options: { index?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.index = options.index;
  }
}

/** How to recover a member whose data this build refuses (damaged, or beyond the log). */
export const REPLACE_MEMBER_ADVICE =
  'Remove this member from the cluster (DELETE /v1/cluster/members/<id>) and add it back under a new id ' +
  'with an empty data directory (--join, then POST /v1/cluster/members); reusing this id with emptied data ' +
  'could make it vote twice in a term.';

/** Wraps a LevelDB failure; a StorageError passes through unchanged. */
export function ioError(what: string, cause: unknown): StorageError {
  if (cause instanceof StorageError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new StorageError('IO', `${what}: ${detail}`, { cause });
}
