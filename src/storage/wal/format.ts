/**
 * The byte layout of the write-ahead log (see docs/storage.md, "The WAL"): segment file
 * names, frames and the items inside a frame. Pure functions; files are handled in wal.ts.
 *
 *   frame = u32 BE body length | u32 BE crc32(body) | u32 BE crc32(first 8 bytes) | body
 *   body  = item*
 *   item  = u8 kind | u32 BE payload length | payload      (payload: a sealed value, values.ts)
 *
 * One persist() is one frame, so a frame is the unit that is either durable or torn. The
 * header has its own checksum so a damaged length is told apart from a short file, and a
 * reader can look for the next intact frame after a damaged one.
 */
import type { Entry, HardState, SnapshotMeta } from '../../../raft/messages.js';
import { encode } from '../../codec/index.js';
import { crc32 } from '../checksum.js';
import {
  decodeEntry,
  decodeHardState,
  decodeSnapshotMeta,
  encodeHardState,
  encodeSnapshotMeta,
  entryPayload,
  seal,
  sealInto,
  tryDecode,
  unseal,
} from '../values.js';

export const FRAME_HEADER_BYTES = 12;
const ITEM_HEADER_BYTES = 5;

/** What an item says; replayed in order (replay.ts). */
export const ITEM = {
  /** The first item of every segment: `{ format, seq, last }`. The log ends at `last` here. */
  segment: 1,
  /** A log entry; it replaces every entry at or after its index. */
  entry: 2,
  /** The hard state; the last one wins. */
  hardState: 3,
  /** The snapshot meta (compaction point); entries at or below its index are gone. */
  snapshot: 4,
} as const;

export interface SegmentHeader {
  /** The WAL format (the database's FORMAT_VERSION when the segment was written). */
  readonly format: number;
  /** The segment's sequence number, also in its file name. */
  readonly seq: number;
  /** The last log index when the segment was started: entries after it are not in the log. */
  readonly last: number;
}

export type WalRecord =
  | { readonly kind: 'segment'; readonly header: SegmentHeader }
  | { readonly kind: 'entry'; readonly entry: Entry }
  | { readonly kind: 'hardState'; readonly hardState: HardState }
  | { readonly kind: 'snapshot'; readonly meta: SnapshotMeta };

// ---- segment file names: <seq>-<first index>.wal, both 16 hex digits ----

const NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

/** `firstIndex` is the index the segment's first entry may take: the log's last index + 1 at its start. */
export function segmentName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}.wal`;
}

export function parseSegmentName(name: string): { seq: number; firstIndex: number } | undefined {
  const m = NAME.exec(name);
  if (m === null) return undefined;
  return { seq: Number.parseInt(m[1]!, 16), firstIndex: Number.parseInt(m[2]!, 16) };
}

const hex16 = (n: number) => n.toString(16).padStart(16, '0');

// ---- items ----

/** A log entry as an item: header, checksum and payload built in one buffer (the hot path). */
export function entryItem(e: Entry): Uint8Array {
  const out = sealInto(entryPayload(e), ITEM_HEADER_BYTES);
  out[0] = ITEM.entry;
  out.writeUInt32BE(out.byteLength - ITEM_HEADER_BYTES, 1);
  return out;
}
export const hardStateItem = (hs: HardState): Uint8Array => item(ITEM.hardState, encodeHardState(hs));
export const snapshotItem = (meta: SnapshotMeta): Uint8Array => item(ITEM.snapshot, encodeSnapshotMeta(meta));
export const segmentItem = (h: SegmentHeader): Uint8Array =>
  item(ITEM.segment, seal(encode({ format: h.format, seq: h.seq, last: h.last })));

function item(kind: number, payload: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(ITEM_HEADER_BYTES + payload.byteLength);
  out[0] = kind;
  out.writeUInt32BE(payload.byteLength, 1);
  out.set(payload, ITEM_HEADER_BYTES);
  return out;
}

// ---- frames ----

/** One frame holding `items`, ready to write. */
export function encodeFrame(items: readonly Uint8Array[]): Uint8Array {
  let bodyBytes = 0;
  for (const it of items) bodyBytes += it.byteLength;
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
  let at = FRAME_HEADER_BYTES;
  for (const it of items) {
    out.set(it, at);
    at += it.byteLength;
  }
  out.writeUInt32BE(bodyBytes, 0);
  out.writeUInt32BE(crc32(out.subarray(FRAME_HEADER_BYTES)), 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  return out;
}

export type FrameAt =
  | { readonly ok: true; readonly body: Uint8Array; readonly end: number }
  /** `torn`: the header or body runs past the end of the data (a write cut short). */
  | { readonly ok: false; readonly reason: string; readonly torn: boolean; readonly body?: Uint8Array };

/** Reads the frame starting at `at` (which must be < data.byteLength). */
export function frameAt(data: Uint8Array, at: number): FrameAt {
  const left = data.byteLength - at;
  if (left < FRAME_HEADER_BYTES) return { ok: false, reason: `only ${left} bytes left for a frame header`, torn: true };
  const view = new DataView(data.buffer, data.byteOffset + at, FRAME_HEADER_BYTES);
  const len = view.getUint32(0);
  const bodySum = view.getUint32(4);
  if (crc32(data.subarray(at, at + 8)) !== view.getUint32(8)) {
    return { ok: false, reason: 'the frame header fails its checksum', torn: false };
  }
  const end = at + FRAME_HEADER_BYTES + len;
  if (end > data.byteLength)
    return { ok: false, reason: `the frame needs ${len} bytes, ${left - FRAME_HEADER_BYTES} are left`, torn: true };
  const body = data.subarray(at + FRAME_HEADER_BYTES, end);
  if (crc32(body) !== bodySum) return { ok: false, reason: 'the frame fails its checksum', torn: false, body };
  return { ok: true, body, end };
}

/** The offset of the first intact frame after `from`, if any (looks at every byte offset). */
export function nextIntactFrame(data: Uint8Array, from: number): number | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let at = from + 1; at + FRAME_HEADER_BYTES <= data.byteLength; at++) {
    // Cheap filter before any checksum: the length must fit in what is left.
    if (view.getUint32(at) > data.byteLength - at - FRAME_HEADER_BYTES) continue;
    if (frameAt(data, at).ok) return at;
  }
  return undefined;
}

/** An item as found in a frame body; `offset` is where its payload starts in the body. */
export interface RawItem {
  readonly kind: number;
  readonly payload: Uint8Array;
  readonly offset: number;
}

/** The items of a frame body, or the ones before the point where it cannot be split, and why. */
export function splitItems(
  body: Uint8Array,
): { ok: true; items: RawItem[] } | { ok: false; reason: string; items: RawItem[] } {
  const items: RawItem[] = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  let at = 0;
  while (at < body.byteLength) {
    if (at + ITEM_HEADER_BYTES > body.byteLength)
      return { ok: false, reason: `an item header is cut at body offset ${at}`, items };
    const kind = body[at]!;
    const len = view.getUint32(at + 1);
    const end = at + ITEM_HEADER_BYTES + len;
    if (end > body.byteLength) return { ok: false, reason: `an item at body offset ${at} runs past its frame`, items };
    items.push({ kind, payload: body.subarray(at + ITEM_HEADER_BYTES, end), offset: at + ITEM_HEADER_BYTES });
    at = end;
  }
  return { ok: true, items };
}

/** Decodes one item's payload, or says why it cannot be trusted. */
export function decodeItem(
  kind: number,
  payload: Uint8Array,
): { ok: true; record: WalRecord } | { ok: false; reason: string } {
  switch (kind) {
    case ITEM.entry: {
      const d = decodeEntry(payload);
      return d.ok ? { ok: true, record: { kind: 'entry', entry: d.entry } } : d;
    }
    case ITEM.hardState: {
      const hs = decodeHardState(payload);
      return typeof hs === 'string'
        ? { ok: false, reason: hs }
        : { ok: true, record: { kind: 'hardState', hardState: hs } };
    }
    case ITEM.snapshot: {
      const meta = decodeSnapshotMeta(payload);
      return typeof meta === 'string' ? { ok: false, reason: meta } : { ok: true, record: { kind: 'snapshot', meta } };
    }
    case ITEM.segment: {
      const u = unseal(payload);
      if (!u.ok) return u;
      const d = tryDecode(u.payload);
      if (!d.ok) return d;
      const h = d.value as Partial<Record<keyof SegmentHeader, unknown>> | null;
      if (typeof h !== 'object' || h === null || !isIndex(h.format) || !isIndex(h.seq) || !isIndex(h.last)) {
        return { ok: false, reason: 'not a segment header' };
      }
      return { ok: true, record: { kind: 'segment', header: { format: h.format, seq: h.seq, last: h.last } } };
    }
    default:
      return { ok: false, reason: `unknown item kind ${kind}` };
  }
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
