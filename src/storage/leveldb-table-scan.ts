/**
 * Verifies LevelDB's table files (`NNNNNN.ldb`, older `.sst`) before LevelDB opens them.
 * LevelDB checks a table block's checksum only when asked to (`verify_checksums`,
 * `paranoid_checks`), and classic-level asks for neither: a damaged byte in a table is read
 * back as a wrong value, or, if it breaks the compression or the block's layout, as an
 * error whenever some read happens to touch it. So the node reads every block of every live
 * table once at start and checks its CRC itself.
 *
 * Which tables are live comes from the MANIFEST (named by `CURRENT`), replayed the way
 * LevelDB does: a table a crash left half-written, or one a compaction made obsolete, is
 * not in it and not judged (LevelDB deletes those at open).
 *
 * Formats (leveldb/doc/table_format.md, log_format.md, db/version_edit.cc):
 * - a table ends in a 48-byte footer: two block handles (varint64 offset and size: the
 *   metaindex and the index block), zero padding, and the magic 0xdb4775248b80fb57 (LE);
 * - every block is followed by a 5-byte trailer: its compression type (0 none, 1 Snappy)
 *   and the masked CRC-32C of the block's stored bytes and that type byte;
 * - a block is entries (varint32 shared, non-shared and value lengths, the key's
 *   non-shared bytes, the value), then a uint32 restart array and its uint32 count; the
 *   index block's values are the handles of the data blocks, the metaindex's those of the
 *   filter blocks;
 * - the MANIFEST is in the log format, one VersionEdit per record.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c, maskCrc, readLogRecords } from './leveldb-log-scan.js';

const FOOTER = 48;
const TRAILER = 5;
const MAGIC_LO = 0x8b80fb57;
const MAGIC_HI = 0xdb477524;

/** A live table file, as the MANIFEST lists it. */
export interface LiveTable {
  readonly number: number;
  readonly size: number;
}

export type TableCheck =
  | { readonly ok: true; readonly bytes: number; readonly blocks: number }
  | { readonly ok: false; readonly why: string };

/**
 * The live table files of the LevelDB in `dir`, or null when there is no database yet or
 * its MANIFEST cannot be read to the end (LevelDB then refuses the open itself, loudly).
 */
export async function liveTables(dir: string): Promise<LiveTable[] | null> {
  let current: string;
  try {
    current = (await readFile(join(dir, 'CURRENT'), 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (!/^MANIFEST-\d+$/.test(current)) return null;
  let manifest: Uint8Array;
  try {
    manifest = await readFile(join(dir, current));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const records = readLogRecords(manifest);
  if (records === null) return null;
  const live = new Map<number, LiveTable>();
  for (const record of records) {
    const edit = decodeVersionEdit(record);
    if (edit === null) return null;
    for (const number of edit.deleted) live.delete(number);
    for (const table of edit.added) live.set(table.number, table);
  }
  return [...live.values()].sort((a, b) => a.number - b.number);
}

/** The path LevelDB uses for a table number: `.ldb`, or `.sst` as older builds named them. */
export async function tablePath(dir: string, number: number): Promise<string | null> {
  const base = String(number).padStart(6, '0');
  for (const ext of ['ldb', 'sst']) {
    const path = join(dir, `${base}.${ext}`);
    try {
      await stat(path);
      return path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return null;
}

/** Checks every block of a table file against its checksum (and the size the MANIFEST recorded). */
export function checkTableBytes(bytes: Uint8Array, expectedSize: number): TableCheck {
  if (bytes.byteLength !== expectedSize)
    return { ok: false, why: `it is ${bytes.byteLength} bytes, the MANIFEST says ${expectedSize}` };
  if (bytes.byteLength < FOOTER) return { ok: false, why: 'it is shorter than a table footer' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const footer = bytes.byteLength - FOOTER;
  if (view.getUint32(footer + 40, true) !== MAGIC_LO || view.getUint32(footer + 44, true) !== MAGIC_HI) {
    return { ok: false, why: 'its footer does not end in the table magic number' };
  }
  const handles = new Reader(bytes, footer, footer + 40);
  const metaindex = handles.handle();
  const index = handles.handle();
  if (metaindex === null || index === null) return { ok: false, why: 'its footer holds no readable block handles' };
  let blocks = 0;
  const read = (h: Handle, what: string): Uint8Array | string => {
    blocks++;
    return readBlock(bytes, h, what);
  };
  const check = (h: Handle, what: string): string | null => {
    blocks++;
    return checkBlock(bytes, h, what);
  };
  for (const [h, what] of [
    [index, 'index block'],
    [metaindex, 'metaindex block'],
  ] as const) {
    const block = read(h, what);
    if (typeof block === 'string') return { ok: false, why: block };
    const values = blockValues(block);
    if (values === null) return { ok: false, why: `its ${what} at offset ${h.offset} has a broken layout` };
    for (const value of values) {
      const child = new Reader(value, 0, value.byteLength).handle();
      if (child === null)
        return { ok: false, why: `its ${what} at offset ${h.offset} holds an unreadable block handle` };
      // Only the checksum: the data blocks' contents are LevelDB's to read.
      const damage = check(child, what === 'index block' ? 'data block' : 'filter block');
      if (damage !== null) return { ok: false, why: damage };
    }
  }
  return { ok: true, bytes: bytes.byteLength, blocks };
}

interface Handle {
  readonly offset: number;
  readonly size: number;
}

/** Why the block at `h` cannot be trusted (past the end, or its checksum fails), or null. */
function checkBlock(bytes: Uint8Array, h: Handle, what: string): string | null {
  const end = h.offset + h.size;
  if (end + TRAILER > bytes.byteLength - FOOTER)
    return `its ${what} at offset ${h.offset} (${h.size} bytes) runs past the end of the file`;
  const stored = new DataView(bytes.buffer, bytes.byteOffset + end + 1, 4).getUint32(0, true);
  // The CRC covers the stored (possibly compressed) bytes and the compression type after them.
  if (stored !== maskCrc(crc32c(bytes, h.offset, end + 1)))
    return `its ${what} at offset ${h.offset} fails its checksum`;
  return null;
}

/** The block's contents (uncompressed), or why it cannot be trusted. */
function readBlock(bytes: Uint8Array, h: Handle, what: string): Uint8Array | string {
  const damage = checkBlock(bytes, h, what);
  if (damage !== null) return damage;
  const end = h.offset + h.size;
  const type = bytes[end];
  if (type === 0) return bytes.subarray(h.offset, end);
  if (type === 1)
    return snappyDecompress(bytes.subarray(h.offset, end)) ?? `its ${what} at offset ${h.offset} does not decompress`;
  return `its ${what} at offset ${h.offset} has an unknown compression type ${type}`;
}

/** The values of a block's entries (keys are not needed), or null if its layout is broken. */
function blockValues(block: Uint8Array): Uint8Array[] | null {
  if (block.byteLength < 4) return null;
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const restarts = view.getUint32(block.byteLength - 4, true);
  const end = block.byteLength - 4 - 4 * restarts;
  if (restarts > block.byteLength || end < 0) return null;
  const r = new Reader(block, 0, end);
  const values: Uint8Array[] = [];
  while (r.at < end) {
    const shared = r.varint();
    const nonShared = r.varint();
    const valueLength = r.varint();
    if (shared === null || nonShared === null || valueLength === null) return null;
    if (!r.skip(nonShared)) return null;
    const value = r.take(valueLength);
    if (value === null) return null;
    values.push(value);
  }
  return values;
}

/** Varints (up to 2^53, which file offsets and numbers stay under) and byte runs over bytes[at, end). */
class Reader {
  constructor(
    private readonly bytes: Uint8Array,
    public at: number,
    private readonly end: number,
  ) {}

  varint(): number | null {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10 && this.at < this.end; i++) {
      const b = this.bytes[this.at++]!;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value <= Number.MAX_SAFE_INTEGER ? value : null;
      scale *= 128;
    }
    return null;
  }

  handle(): Handle | null {
    const offset = this.varint();
    const size = this.varint();
    return offset === null || size === null ? null : { offset, size };
  }

  take(n: number): Uint8Array | null {
    if (this.at + n > this.end) return null;
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  skip(n: number): boolean {
    return this.take(n) !== null;
  }

  get done(): boolean {
    return this.at >= this.end;
  }
}

/** The tables a VersionEdit adds and deletes, or null if it does not parse. */
function decodeVersionEdit(record: Uint8Array): { added: LiveTable[]; deleted: number[] } | null {
  const r = new Reader(record, 0, record.byteLength);
  const added: LiveTable[] = [];
  const deleted: number[] = [];
  const bytesField = (): boolean => {
    const n = r.varint();
    return n !== null && r.skip(n);
  };
  while (!r.done) {
    const tag = r.varint();
    switch (tag) {
      case 1: // comparator name
        if (!bytesField()) return null;
        break;
      case 2: // log number
      case 3: // next file number
      case 4: // last sequence
      case 9: // previous log number
        if (r.varint() === null) return null;
        break;
      case 5: // compact pointer: level, internal key
        if (r.varint() === null || !bytesField()) return null;
        break;
      case 6: {
        // deleted file: level, number
        const level = r.varint();
        const number = r.varint();
        if (level === null || number === null) return null;
        deleted.push(number);
        break;
      }
      case 7: {
        // new file: level, number, size, smallest and largest internal keys
        const level = r.varint();
        const number = r.varint();
        const size = r.varint();
        if (level === null || number === null || size === null || !bytesField() || !bytesField()) return null;
        added.push({ number, size });
        break;
      }
      default:
        return null;
    }
  }
  return { added, deleted };
}

/** Snappy's raw format (what LevelDB stores); null if the input is not valid Snappy. */
export function snappyDecompress(input: Uint8Array): Uint8Array | null {
  const r = new Reader(input, 0, input.byteLength);
  const length = r.varint();
  if (length === null || length > 1 << 30) return null;
  const out = new Uint8Array(length);
  let o = 0;
  while (!r.done) {
    const tag = input[r.at++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let n = tag >>> 2;
      if (n >= 60) {
        const extra = n - 59;
        if (r.at + extra > input.byteLength) return null;
        n = 0;
        for (let i = 0; i < extra; i++) n += input[r.at++]! * 2 ** (8 * i);
      }
      n += 1;
      if (r.at + n > input.byteLength || o + n > length) return null;
      out.set(input.subarray(r.at, r.at + n), o);
      r.at += n;
      o += n;
      continue;
    }
    let n: number;
    let offset: number;
    if (kind === 1) {
      if (r.at + 1 > input.byteLength) return null;
      n = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | input[r.at++]!;
    } else {
      const width = kind === 2 ? 2 : 4;
      if (r.at + width > input.byteLength) return null;
      n = (tag >>> 2) + 1;
      offset = 0;
      for (let i = 0; i < width; i++) offset += input[r.at++]! * 2 ** (8 * i);
    }
    if (offset === 0 || offset > o || o + n > length) return null;
    // Copies may overlap their own output (a run): byte by byte.
    for (let i = 0; i < n; i++, o++) out[o] = out[o - offset]!;
  }
  return o === length ? out : null;
}
