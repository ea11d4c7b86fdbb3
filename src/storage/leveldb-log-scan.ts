/**
 * Reads a LevelDB write-ahead log file (`NNNNNN.log`) the way LevelDB's own reader does,
 * only to tell two kinds of damage apart before LevelDB opens (and quietly "repairs") it:
 *
 * - a torn tail: the last records of the newest log were being written when the machine
 *   lost power (state-machine batches are not synced; the Raft WAL is, and replays them).
 *   Nothing valid follows the first bad record. Harmless: LevelDB drops whole batches, each
 *   with its applied index, and the state machine is simply a little older.
 * - damage in the middle: a bad record with valid records after it. LevelDB would drop the
 *   batches in between and keep the later ones, so the state machine would be missing
 *   records under an applied index that says it has them.
 *
 * Format (leveldb/doc/log_format.md): 32 KiB blocks of records; a record is a 7-byte header
 * (masked CRC-32C of type and data, 2-byte little-endian length, 1-byte type: 1 full,
 * 2 first, 3 middle, 4 last) and its data; a block's last < 7 bytes are zero padding.
 */
import { readFile } from 'node:fs/promises';

const BLOCK = 32 * 1024;
const HEADER = 7;

/** Slice-by-8 tables for CRC-32C: [k][b] is the CRC of byte b followed by k zero bytes. */
const CRC32C_TABLES = (() => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[0]![n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++)
    for (let k = 1; k < 8; k++) t[k]![n] = (t[0]![t[k - 1]![n]! & 0xff]! ^ (t[k - 1]![n]! >>> 8)) >>> 0;
  return t;
})();

/**
 * CRC-32C (Castagnoli) of bytes[from, to), eight bytes a step (about 4x the byte-at-a-time
 * loop: table files are checked whole at every start).
 */
export function crc32c(bytes: Uint8Array, from = 0, to = bytes.length): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = CRC32C_TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = 0xffffffff;
  let i = from;
  for (; i + 8 <= to; i += 8) {
    c ^= bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    c =
      t7[c & 0xff]! ^
      t6[(c >>> 8) & 0xff]! ^
      t5[(c >>> 16) & 0xff]! ^
      t4[c >>> 24]! ^
      t3[bytes[i + 4]!]! ^
      t2[bytes[i + 5]!]! ^
      t1[bytes[i + 6]!]! ^
      t0[bytes[i + 7]!]!;
  }
  for (; i < to; i++) c = t0[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** LevelDB stores CRCs masked (a CRC of data that holds CRCs is otherwise weak). */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

export interface LogScan {
  /** Offset of the first record that fails its checksum or does not fit; null if none. */
  readonly firstBad: number | null;
  /** Whether a valid record follows the first bad one (damage in the middle, not a torn tail). */
  readonly validAfterBad: boolean;
}

/** Whether a valid record starts at `at`. */
function validRecordAt(bytes: Uint8Array, at: number): boolean {
  const blockLeft = BLOCK - (at % BLOCK);
  if (blockLeft < HEADER || at + HEADER > bytes.length) return false;
  const length = bytes[at + 4]! | (bytes[at + 5]! << 8);
  const type = bytes[at + 6]!;
  if (type < 1 || type > 4 || HEADER + length > blockLeft || at + HEADER + length > bytes.length) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, 4);
  return view.getUint32(0, true) === maskCrc(crc32c(bytes, at + 6, at + HEADER + length));
}

export function scanLogBytes(bytes: Uint8Array): LogScan {
  let at = 0;
  while (at < bytes.length) {
    const blockLeft = BLOCK - (at % BLOCK);
    if (blockLeft < HEADER) {
      at += blockLeft; // trailer padding
      continue;
    }
    if (at + HEADER > bytes.length) break; // a header cut short at the end: a torn tail LevelDB reads as EOF
    const length = bytes[at + 4]! | (bytes[at + 5]! << 8);
    if (length === 0 && bytes[at + 6] === 0 && bytes[at] === 0) {
      // Zeros: preallocated or never written. Valid data after them means damage.
      return { firstBad: at, validAfterBad: anyValidAfter(bytes, at) };
    }
    if (!validRecordAt(bytes, at)) {
      if (at + HEADER + length > bytes.length && HEADER + length <= blockLeft) break; // data cut short at EOF: read as EOF
      return { firstBad: at, validAfterBad: anyValidAfter(bytes, at) };
    }
    at += HEADER + length;
  }
  return { firstBad: null, validAfterBad: false };
}

/**
 * Is there a valid record after `bad`, in a later block? Records never cross a block
 * boundary, so every block starts with a record (or a fragment of one); LevelDB, after a
 * bad record, drops the rest of that block and goes on at the next one. So damage is in the
 * middle exactly when some later block starts with a valid record: LevelDB would keep it
 * (and the applied index in it) while dropping what came before.
 */
function anyValidAfter(bytes: Uint8Array, bad: number): boolean {
  for (let block = (Math.floor(bad / BLOCK) + 1) * BLOCK; block + HEADER <= bytes.length; block += BLOCK) {
    if (validRecordAt(bytes, block)) return true;
  }
  return false;
}

export async function scanLogFile(path: string): Promise<LogScan> {
  return scanLogBytes(await readFile(path));
}

/**
 * The logical records of a log-format file (a MANIFEST), fragments joined, as LevelDB's
 * reader returns them; a torn tail ends the file as it does for LevelDB. Null if a record
 * in the middle is damaged (LevelDB then refuses to open the database itself).
 */
export function readLogRecords(bytes: Uint8Array): Uint8Array[] | null {
  if (scanLogBytes(bytes).validAfterBad) return null;
  const records: Uint8Array[] = [];
  let parts: Uint8Array[] | null = null;
  let at = 0;
  while (at < bytes.length) {
    const blockLeft = BLOCK - (at % BLOCK);
    if (blockLeft < HEADER) {
      at += blockLeft;
      continue;
    }
    if (!validRecordAt(bytes, at)) break; // the torn tail (checked above: nothing valid after it)
    const length = bytes[at + 4]! | (bytes[at + 5]! << 8);
    const type = bytes[at + 6]!;
    const data = bytes.subarray(at + HEADER, at + HEADER + length);
    at += HEADER + length;
    if (type === 1) {
      records.push(data);
      parts = null;
    } else if (type === 2) {
      parts = [data];
    } else if (parts === null) {
      return null; // a middle or last fragment without its first
    } else {
      parts.push(data);
      if (type === 4) {
        records.push(Buffer.concat(parts));
        parts = null;
      }
    }
  }
  return records;
}
