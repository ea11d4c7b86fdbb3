/**
 * Checksummed values: `crc32(payload)` as 4 big-endian bytes, then the msgpack payload.
 * Log entries are stored as `[index, term, type, data]` (type 0 = normal, 1 = conf); the
 * index is repeated inside the value so an entry stored under the wrong key is caught too.
 */
import type { ConfState, Entry, EntryType, HardState, SnapshotMeta } from '../../raft/messages.js';
import { decode, encode } from '../codec/index.js';
import { crc32 } from './checksum.js';

export function seal(payload: Uint8Array): Uint8Array {
  return sealInto(payload, 0);
}

/**
 * `payload` sealed at offset `headroom` of a new buffer (the caller fills the bytes before
 * it). One pooled allocation: `new Uint8Array(n)` of a few hundred bytes costs several
 * times more than the copy and the checksum together, on every log entry.
 */
export function sealInto(payload: Uint8Array, headroom: number): Buffer {
  const out = Buffer.allocUnsafe(headroom + 4 + payload.byteLength);
  out.writeUInt32BE(crc32(payload), headroom);
  out.set(payload, headroom + 4);
  return out;
}

/** The payload of a sealed value, or a reason it is damaged. */
export function unseal(value: Uint8Array): { ok: true; payload: Uint8Array } | { ok: false; reason: string } {
  if (value.byteLength < 4)
    return { ok: false, reason: `value is ${value.byteLength} bytes, shorter than its checksum` };
  const stored = new DataView(value.buffer, value.byteOffset, 4).getUint32(0);
  const payload = value.subarray(4);
  const actual = crc32(payload);
  if (stored !== actual) {
    return { ok: false, reason: `checksum mismatch (stored ${hex(stored)}, computed ${hex(actual)})` };
  }
  return { ok: true, payload };
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Plain Uint8Array view (msgpackr hands out Buffers in Node). */
export function plainBytes(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

const TYPE_CODE: Record<EntryType, number> = { normal: 0, conf: 1 };

export function encodeEntry(e: Entry): Uint8Array {
  return seal(entryPayload(e));
}

/** The msgpack payload of a stored entry, before sealing. */
export function entryPayload(e: Entry): Uint8Array {
  return encode([e.index, e.term, TYPE_CODE[e.type], e.data]);
}

/** Decodes a sealed entry, or says why it cannot be trusted. */
export function decodeEntry(value: Uint8Array): { ok: true; entry: Entry } | { ok: false; reason: string } {
  const unsealed = unseal(value);
  if (!unsealed.ok) return unsealed;
  const decoded = tryDecode(unsealed.payload);
  if (!decoded.ok) return decoded;
  const raw = decoded.value;
  if (!Array.isArray(raw) || raw.length !== 4) return { ok: false, reason: 'not an entry record' };
  const [index, term, type, data] = raw as unknown[];
  if (!isIndex(index) || !isIndex(term) || (type !== 0 && type !== 1) || !(data instanceof Uint8Array)) {
    return { ok: false, reason: 'not an entry record' };
  }
  return { ok: true, entry: { index, term, type: type === 0 ? 'normal' : 'conf', data: plainBytes(data) } };
}

export function encodeHardState(hs: HardState): Uint8Array {
  return seal(encode({ term: hs.term, vote: hs.vote, commit: hs.commit }));
}

export function decodeHardState(value: Uint8Array): HardState | string {
  const u = unseal(value);
  if (!u.ok) return u.reason;
  const decoded = tryDecode(u.payload);
  if (!decoded.ok) return decoded.reason;
  const raw = decoded.value;
  if (!isRecord(raw)) return 'not a hard state record';
  const { term, vote, commit } = raw;
  if (!isIndex(term) || !isIndex(commit) || !(vote === null || typeof vote === 'string'))
    return 'not a hard state record';
  return { term, vote, commit };
}

export function encodeSnapshotMeta(meta: SnapshotMeta): Uint8Array {
  return seal(encode({ index: meta.index, term: meta.term, conf: plainConf(meta.conf) }));
}

export function decodeSnapshotMeta(value: Uint8Array): SnapshotMeta | string {
  const u = unseal(value);
  if (!u.ok) return u.reason;
  const decoded = tryDecode(u.payload);
  if (!decoded.ok) return decoded.reason;
  return parseSnapshotMeta(decoded.value) ?? 'not a snapshot meta record';
}

export function parseSnapshotMeta(raw: unknown): SnapshotMeta | undefined {
  if (!isRecord(raw)) return undefined;
  const { index, term } = raw;
  const conf = parseConfState(raw['conf']);
  if (!isIndex(index) || !isIndex(term) || conf === undefined) return undefined;
  return { index, term, conf };
}

export function parseConfState(raw: unknown): ConfState | undefined {
  if (!isRecord(raw)) return undefined;
  const { voters, learners } = raw;
  if (!isStringArray(voters) || !isStringArray(learners)) return undefined;
  return { voters, learners };
}

export function parseApplied(raw: unknown): { index: number; term: number } | undefined {
  if (!isRecord(raw)) return undefined;
  const { index, term } = raw;
  return isIndex(index) && isIndex(term) ? { index, term } : undefined;
}

export function plainConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] };
}

/** decode() with the failure as a value, its message kept for the caller's error. */
export function tryDecode(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: decode(bytes) };
  } catch (err) {
    return { ok: false, reason: `undecodable msgpack: ${err instanceof Error ? err.message : String(err)}` };
  }
}

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** The value the registry stores under SM_APPLIED_KEY. */
export function encodeApplied(applied: { readonly index: number; readonly term: number }): Uint8Array {
  return encode({ index: applied.index, term: applied.term });
}

/** The value the registry stores under SM_CONF_KEY. */
export function encodeConfState(conf: ConfState): Uint8Array {
  return encode(plainConf(conf));
}
