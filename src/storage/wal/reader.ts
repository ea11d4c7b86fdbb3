/**
 * Reads the WAL segments at open, verifies every frame, and hands out the records in
 * write order. A damaged frame is a torn write, dropped silently, only when it is in the
 * last segment, no intact frame follows it, and it looks torn: it runs past the end of the
 * file, or part of it in some disk sector reads as zeros (blocks the crash kept from being
 * written). That was the write in progress when the process or machine died, and it was
 * never acknowledged (the caller's persist() had not returned). Any other damage — a
 * flipped bit in the last frame included — is refused, naming the first entry that cannot
 * be read: silently dropping a frame that was acknowledged would forget a vote or entries.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from '../checksum.js';
import { ioError, REPLACE_MEMBER_ADVICE, StorageError } from '../errors.js';
import { tryDecode } from '../values.js';
import {
  decodeItem,
  FRAME_HEADER_BYTES,
  frameAt,
  ITEM,
  nextIntactFrame,
  parseSegmentName,
  splitItems,
  type WalRecord,
} from './format.js';

export interface SegmentFile {
  readonly name: string;
  readonly seq: number;
  /** The log's last index + 1 when the segment was started (from its name). */
  readonly firstIndex: number;
  /** Bytes of intact frames (after dropping a torn tail). */
  readonly bytes: number;
}

export interface WalScan {
  /** Segments in sequence order. */
  readonly segments: SegmentFile[];
  /** A torn last write found at the end of the last segment: where the intact data ends. */
  readonly torn?: { readonly segment: string; readonly offset: number; readonly dropped: number };
}

/** The segment files in `dir`, in sequence order; checks that no sequence number is missing. */
export async function listSegments(dir: string): Promise<{ name: string; seq: number; firstIndex: number }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(`listing the WAL in ${dir}`, err);
  }
  const segments = names.flatMap((name) => {
    const parsed = parseSegmentName(name);
    return parsed === undefined ? [] : [{ name, ...parsed }];
  });
  segments.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segments.length; i++) {
    if (segments[i]!.seq !== segments[i - 1]!.seq + 1) {
      throw new StorageError(
        'LOG_GAP',
        `${dir}: WAL segment ${segments[i - 1]!.seq + 1} is missing (between ${segments[i - 1]!.name} and ${segments[i]!.name}); refusing to start. ${REPLACE_MEMBER_ADVICE}`,
        { index: segments[i]!.firstIndex },
      );
    }
  }
  return segments;
}

/** Reads every segment in `dir`, calling `onRecord` for each record in order. */
export async function readWal(dir: string, format: number, onRecord: (r: WalRecord) => void): Promise<WalScan> {
  const listed = await listSegments(dir);
  const segments: SegmentFile[] = [];
  let torn: WalScan['torn'];
  /** The index of the last entry read, for naming the entry after it when a frame is unreadable. */
  let lastEntry = 0;
  for (const [i, seg] of listed.entries()) {
    const path = join(dir, seg.name);
    let data: Uint8Array;
    try {
      data = await readFile(path);
    } catch (err) {
      throw ioError(`reading WAL segment ${path}`, err);
    }
    const isLast = i === listed.length - 1;
    let at = 0;
    while (at < data.byteLength) {
      const frame = frameAt(data, at);
      if (!frame.ok) {
        if (isLast && looksTorn(data, at, frame.torn) && nextIntactFrame(data, at) === undefined) {
          torn = { segment: seg.name, offset: at, dropped: data.byteLength - at };
          break;
        }
        throw damaged(path, at, frame.reason, frame.body, lastEntry);
      }
      const split = splitItems(frame.body);
      if (!split.ok) throw damaged(path, at, split.reason, frame.body, lastEntry);
      let sawSegment = false;
      for (const { kind, payload } of split.items) {
        const decoded = decodeItem(kind, payload);
        if (!decoded.ok) throw damaged(path, at, decoded.reason, frame.body, lastEntry);
        const r = decoded.record;
        if (r.kind === 'segment') {
          if (at !== 0 || r.header.seq !== seg.seq) {
            throw new StorageError(
              'CORRUPT_STATE',
              `${path}: a segment header for segment ${r.header.seq} at offset ${at}; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
            );
          }
          if (r.header.format !== format) {
            throw new StorageError(
              'UNKNOWN_FORMAT',
              `${path} is in WAL format ${r.header.format}; this build reads format ${format} only`,
            );
          }
          sawSegment = true;
        } else if (r.kind === 'entry') {
          lastEntry = r.entry.index;
        }
        onRecord(r);
      }
      if (at === 0 && !sawSegment) {
        throw new StorageError(
          'CORRUPT_STATE',
          `${path}: the first frame has no segment header; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
        );
      }
      at = frame.end;
    }
    if (at === 0 && !isLast) {
      throw new StorageError(
        'CORRUPT_STATE',
        `${path}: WAL segment is empty but is not the last one; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
      );
    }
    segments.push({ name: seg.name, seq: seg.seq, firstIndex: seg.firstIndex, bytes: at });
  }
  return torn === undefined ? { segments } : { segments, torn };
}

const SECTOR = 512;

/**
 * Whether the damaged frame at `at` looks like a write cut short: it runs past the end of
 * the data, or one of its pieces between sector boundaries (of the file) is all zeros.
 */
function looksTorn(data: Uint8Array, at: number, pastEnd: boolean): boolean {
  if (pastEnd) return true;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const declared = at + FRAME_HEADER_BYTES + (at + 4 <= data.byteLength ? view.getUint32(at) : 0);
  // With a damaged header the length cannot be trusted: the frame may reach the end.
  const end = Math.min(data.byteLength, frameHeaderOk(data, at) ? declared : data.byteLength);
  for (let lo = at; lo < end; ) {
    const hi = Math.min(end, (Math.floor(lo / SECTOR) + 1) * SECTOR);
    let zero = true;
    for (let i = lo; i < hi && zero; i++) zero = data[i] === 0;
    if (zero) return true;
    lo = hi;
  }
  return false;
}

function frameHeaderOk(data: Uint8Array, at: number): boolean {
  if (at + FRAME_HEADER_BYTES > data.byteLength) return false;
  const view = new DataView(data.buffer, data.byteOffset + at, FRAME_HEADER_BYTES);
  return crc32(data.subarray(at, at + 8)) === view.getUint32(8);
}

/**
 * The error for a damaged frame. An entry whose own checksum fails is named exactly; if the
 * damage is elsewhere in the frame, the frame's first entry is named; a frame that cannot
 * even be delimited names the entry after the last one read.
 */
function damaged(
  path: string,
  offset: number,
  reason: string,
  body: Uint8Array | undefined,
  lastEntry: number,
): StorageError {
  const where = `${path} at offset ${offset}`;
  if (body !== undefined) {
    const { items } = splitItems(body);
    let previous = lastEntry;
    let first: number | undefined;
    for (const { kind, payload } of items) {
      if (kind !== ITEM.entry) continue;
      const d = decodeItem(kind, payload);
      if (!d.ok) {
        const index = claimedIndex(payload) ?? previous + 1;
        return new StorageError(
          'CORRUPT_ENTRY',
          `log entry ${index} is damaged (${d.reason}) in ${where}; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
          { index },
        );
      }
      if (d.record.kind !== 'entry') continue;
      first ??= d.record.entry.index;
      previous = d.record.entry.index;
    }
    if (first !== undefined) {
      return new StorageError(
        'CORRUPT_ENTRY',
        `the WAL frame holding log entries ${first}–${previous} is damaged (${reason}) in ${where}; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
        { index: first },
      );
    }
    if (items.length > 0) {
      return new StorageError(
        'CORRUPT_STATE',
        `a WAL frame without entries is damaged (${reason}) in ${where}; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
      );
    }
  }
  const index = lastEntry + 1;
  return new StorageError(
    'CORRUPT_ENTRY',
    `the WAL frame after log entry ${lastEntry} is damaged (${reason}) in ${where}: log entry ${index} and later cannot be read; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
    { index },
  );
}

/** The index a damaged sealed entry claims, if its msgpack still reads as an entry. */
function claimedIndex(sealed: Uint8Array): number | undefined {
  const d = tryDecode(sealed.subarray(4));
  if (!d.ok || !Array.isArray(d.value)) return undefined;
  const index = (d.value as unknown[])[0];
  return typeof index === 'number' && Number.isSafeInteger(index) && index > 0 ? index : undefined;
}
