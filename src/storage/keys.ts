/**
 * Key layout. The three sublevels get LevelDB prefixes `!log!`, `!raft!` and `!sm!`
 * (abstract-level's sublevel prefixes); inside them:
 *
 * - `log`:  8-byte big-endian entry index, so keys sort by index.
 * - `raft`: fixed ASCII names, below.
 * - `sm`:   owned by the registry; the two reserved keys below carry its applied position.
 */

export const LOG_SUBLEVEL = 'log';
export const RAFT_SUBLEVEL = 'raft';
export const SM_SUBLEVEL = 'sm';

/** Keys of the `raft` sublevel. */
export const RAFT_KEYS = {
  /** msgpack number: the on-disk format version, written when the database is created. */
  format: 'format',
  /** checksummed msgpack HardState. */
  hardState: 'hardstate',
  /** checksummed msgpack SnapshotMeta: the compaction point (index, term, conf). */
  snapshotMeta: 'snapshot',
} as const;

/**
 * Reserved `sm` key: msgpack `{ index, term }` of the last entry the state machine
 * applied, written by the registry in the same batch as the state it describes.
 */
export const SM_APPLIED_KEY = '\x00meta/applied';
/** Reserved `sm` key: msgpack ConfState as of the applied index. */
export const SM_CONF_KEY = '\x00meta/conf';
export const SM_APPLIED_KEY_BYTES: Uint8Array = new TextEncoder().encode(SM_APPLIED_KEY);
export const SM_CONF_KEY_BYTES: Uint8Array = new TextEncoder().encode(SM_CONF_KEY);

/** Largest index a log key can hold exactly (JavaScript numbers are exact up to 2^53). */
const MAX_INDEX = Number.MAX_SAFE_INTEGER;

export function logKey(index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) throw new RangeError(`invalid log index ${index}`);
  const key = new Uint8Array(8);
  const view = new DataView(key.buffer);
  view.setUint32(0, Math.floor(index / 0x1_0000_0000));
  view.setUint32(4, index >>> 0);
  return key;
}

/** The index a log key encodes, or undefined if the key is not 8 bytes. */
export function logKeyIndex(key: Uint8Array): number | undefined {
  if (key.byteLength !== 8) return undefined;
  const view = new DataView(key.buffer, key.byteOffset, 8);
  return view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
