/**
 * Snapshot data: the whole `sm` sublevel as a stream of framed records, so it can be
 * written while iterating and read back record by record.
 *
 *   record  = u32 BE body length | u32 BE crc32(body) | body (msgpack)
 *   data    = header { format, kind: 'rollcall-sm' }
 *             chunk* [[key, value], …]            (keys in LevelDB order, ~64 KiB each)
 *             trailer { pairs }                   (count of pairs: catches truncation)
 *
 * Zero-length data stands for an empty state machine.
 */
import type { ConfState, PiecewiseSnapshot, Snapshot, SnapshotMeta } from '../../raft/messages.js';
import { encode } from '../codec/index.js';
import { crc32 } from './checksum.js';
import type { SmSublevel } from './database.js';
import { ioError, StorageError } from './errors.js';
import { bytesEqual, compareBytes, isNodeLocalSmKey, SM_APPLIED_KEY_BYTES, SM_CONF_KEY_BYTES } from './keys.js';
import { scanBatches } from './scan.js';
import { parseApplied, parseConfState, plainBytes, tryDecode } from './values.js';

export const SNAPSHOT_KIND = 'rollcall-sm';
/** The snapshot data format, independent of the on-disk FORMAT_VERSION (it did not change with it). */
export const SNAPSHOT_DATA_FORMAT = 1;
const CHUNK_BYTES = 64 * 1024;
export type Pair = readonly [key: Uint8Array, value: Uint8Array];

export type SmOp =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

/**
 * The size of the pieces a SnapshotWriter fills: the transport's snapshot chunk (Raft's
 * `snapshotChunkBytes`, 1 MiB), so each piece goes out as one chunk as it is. Above a
 * smaller configured chunk size it only means several chunks per piece (Raft cuts each).
 */
export const SNAPSHOT_PIECE_BYTES = 1024 * 1024;

/**
 * Builds snapshot data incrementally, record by record into pieces of about
 * SNAPSHOT_PIECE_BYTES (a record longer than that gets a piece of its own). The data is
 * the pieces in order; a record never spans two pieces, but a reader must not rely on it
 * (an older leader cuts its one contiguous copy every 1 MiB). A piece handed out by
 * finishPieces is never written again (Raft sends views of it), and the same pairs give
 * the same pieces (a transfer's chunks must be cut the same way each time it is sent):
 * once finished, the writer is spent, and add() or finishing again throws.
 *
 * Why pieces: a leader that prepared a 257-MB snapshot (1,000,000 instances) held it twice
 * for a moment, its records and then one contiguous copy of them for Raft, and allocated
 * the copy in one piece; those external allocations set off full garbage collections of
 * the whole registry's heap on the leader while it served writes.
 */
export class SnapshotWriter {
  private readonly pieces: Uint8Array[] = [];
  private piece: Uint8Array;
  private used = 0;
  private chunk: Pair[] = [];
  private chunkBytes = 0;
  private count = 0;
  private spent = false;

  constructor(private readonly pieceBytes = SNAPSHOT_PIECE_BYTES) {
    this.piece = new Uint8Array(pieceBytes);
    this.record({ format: SNAPSHOT_DATA_FORMAT, kind: SNAPSHOT_KIND });
  }

  add(key: Uint8Array, value: Uint8Array): void {
    this.checkNotSpent();
    this.chunk.push([key, value]);
    this.chunkBytes += key.byteLength + value.byteLength + 8;
    this.count++;
    if (this.chunkBytes >= CHUNK_BYTES) this.flush();
  }

  /** The data as one array (a copy of the pieces: for small data, tools and tests). */
  finish(): Uint8Array {
    return joinPieces(this.finishPieces());
  }

  /** The data as its pieces, in order; the writer is spent. */
  finishPieces(): Uint8Array[] {
    this.checkNotSpent();
    this.spent = true;
    this.flush();
    this.record({ pairs: this.count });
    // The last piece is copied to its length: a small snapshot should not keep a whole piece.
    if (this.used > 0) this.pieces.push(this.piece.slice(0, this.used));
    this.piece = new Uint8Array(0);
    this.used = 0;
    return this.pieces;
  }

  private checkNotSpent(): void {
    // Writing on would change pieces already handed out (the last one is in `pieces`).
    if (this.spent) throw new Error('SnapshotWriter: already finished');
  }

  /**
   * Writes the pairs gathered as one record, msgpack-encoded by hand straight into the
   * piece (the same bytes `encode` gives): encoding 64 KiB of pairs with msgpackr and then
   * copying them into the piece allocated every byte of the snapshot twice.
   */
  private flush(): void {
    const pairs = this.chunk;
    if (pairs.length === 0) return;
    let size = arrayHeadBytes(pairs.length);
    for (const [key, value] of pairs) size += 1 + binBytes(key.byteLength) + binBytes(value.byteLength);
    const body = this.reserve(size);
    let at = writeArrayHead(body, 0, pairs.length);
    for (const [key, value] of pairs) {
      body[at++] = 0x92; // fixarray of 2: [key, value]
      at = writeBin(body, at, key);
      at = writeBin(body, at, value);
    }
    this.seal(body);
    this.chunk = [];
    this.chunkBytes = 0;
  }

  private record(value: unknown): void {
    const encoded = encode(value);
    const body = this.reserve(encoded.byteLength);
    body.set(encoded);
    this.seal(body);
  }

  /** Room for a record's body of `size` bytes after its 8-byte head, in this piece or a new one. */
  private reserve(size: number): Uint8Array {
    if (this.used + 8 + size > this.piece.byteLength) {
      if (this.used > 0) this.pieces.push(this.piece.subarray(0, this.used));
      this.piece = new Uint8Array(Math.max(this.pieceBytes, 8 + size));
      this.used = 0;
    }
    return this.piece.subarray(this.used + 8, this.used + 8 + size);
  }

  /** Writes the head of the record whose body reserve() gave and was filled. */
  private seal(body: Uint8Array): void {
    const view = new DataView(this.piece.buffer, this.piece.byteOffset + this.used, 8);
    view.setUint32(0, body.byteLength);
    view.setUint32(4, crc32(body));
    this.used += 8 + body.byteLength;
  }
}

/** The length of a msgpack array head for `n` items. */
function arrayHeadBytes(n: number): number {
  return n < 16 ? 1 : n < 0x10000 ? 3 : 5;
}

function writeArrayHead(out: Uint8Array, at: number, n: number): number {
  if (n < 16) {
    out[at] = 0x90 | n;
    return at + 1;
  }
  const view = new DataView(out.buffer, out.byteOffset);
  if (n < 0x10000) {
    out[at] = 0xdc;
    view.setUint16(at + 1, n);
    return at + 3;
  }
  out[at] = 0xdd;
  view.setUint32(at + 1, n);
  return at + 5;
}

/** The length of `len` bytes encoded as msgpack bin (head included). */
function binBytes(len: number): number {
  return len + (len < 0x100 ? 2 : len < 0x10000 ? 3 : 5);
}

function writeBin(out: Uint8Array, at: number, bytes: Uint8Array): number {
  const len = bytes.byteLength;
  if (len < 0x100) {
    out[at] = 0xc4;
    out[at + 1] = len;
    at += 2;
  } else if (len < 0x10000) {
    out[at] = 0xc5;
    out[at + 1] = len >>> 8;
    out[at + 2] = len & 0xff;
    at += 3;
  } else {
    out[at] = 0xc6;
    new DataView(out.buffer, out.byteOffset).setUint32(at + 1, len);
    at += 5;
  }
  out.set(bytes, at);
  return at + len;
}

/** `pieces` concatenated into one array. */
export function joinPieces(pieces: readonly Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  let total = 0;
  for (const p of pieces) total += p.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** A snapshot's data as one array, whichever way it is held (tests, tools). */
export function snapshotBytes(snapshot: Snapshot | PiecewiseSnapshot): Uint8Array {
  return snapshot.kind === 'pieces' ? joinPieces(snapshot.pieces) : snapshot.data;
}

/** The pairs in snapshot data, in order; throws CORRUPT_SNAPSHOT or UNKNOWN_FORMAT. */
export function decodeSnapshotData(data: Uint8Array): Pair[] {
  const pairs: Pair[] = [];
  for (const _ of decodeRecords(data, pairs));
  return pairs;
}

/**
 * decodeSnapshotData, giving the event loop a turn after about `pairsPerTurn` pairs: a
 * follower decoding a 257-MB snapshot (1,000,000 instances) in one go held its loop for
 * seconds, long enough for its disk-stall detector to fire and its heartbeats to stop.
 */
export async function decodeSnapshotDataInSlices(data: Uint8Array, pairsPerTurn = 5000): Promise<Pair[]> {
  const pairs: Pair[] = [];
  let nextTurnAt = pairsPerTurn;
  for (const _ of decodeRecords(data, pairs)) {
    if (pairs.length < nextTurnAt) continue;
    nextTurnAt = pairs.length + pairsPerTurn;
    await nextTurn();
  }
  return pairs;
}

/** One turn of the event loop (I/O and timers run before the caller goes on). */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/** Decodes `data` record by record into `pairs`, yielding after each record; throws as decodeSnapshotData. */
function* decodeRecords(data: Uint8Array, pairs: Pair[]): Generator<void, void, undefined> {
  if (data.byteLength === 0) return;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  let n = 0;
  let done = false;
  while (at < data.byteLength) {
    if (done) throw corrupt(`bytes after the trailer at offset ${at}`);
    if (at + 8 > data.byteLength) throw corrupt(`record header truncated at offset ${at}`);
    const len = view.getUint32(at);
    const sum = view.getUint32(at + 4);
    const body = data.subarray(at + 8, at + 8 + len);
    if (body.byteLength !== len) throw corrupt(`record at offset ${at} truncated`);
    if (crc32(body) !== sum) throw corrupt(`record at offset ${at} fails its checksum`);
    if (n > 0 && !done && readPairs(body, pairs)) {
      at += 8 + len;
      n++;
      yield;
      continue;
    }
    const decoded = tryDecode(body);
    if (!decoded.ok) throw corrupt(`record at offset ${at}: ${decoded.reason}`);
    const rec = decoded.value;
    if (n === 0) {
      checkHeader(rec);
    } else if (Array.isArray(rec)) {
      for (const p of rec as unknown[]) {
        if (!Array.isArray(p) || p.length !== 2 || !(p[0] instanceof Uint8Array) || !(p[1] instanceof Uint8Array)) {
          throw corrupt(`record at offset ${at} holds something other than [key, value] pairs`);
        }
        const prev = pairs[pairs.length - 1];
        if (prev !== undefined && compareBytes(prev[0], p[0]) >= 0)
          throw corrupt(`keys out of order (or repeated) at pair ${pairs.length}`);
        pairs.push([plainBytes(p[0]), plainBytes(p[1])]);
      }
    } else if (typeof rec === 'object' && rec !== null && typeof (rec as { pairs?: unknown }).pairs === 'number') {
      const expected = (rec as { pairs: number }).pairs;
      if (expected !== pairs.length) throw corrupt(`trailer counts ${expected} pairs, data holds ${pairs.length}`);
      done = true;
    } else {
      throw corrupt(`record at offset ${at} is neither a chunk nor the trailer`);
    }
    at += 8 + len;
    n++;
    yield;
  }
  if (!done) throw corrupt('data ends without its trailer (truncated)');
}

/**
 * Reads a record that is a chunk of [key, value] pairs as SnapshotWriter writes it (a
 * msgpack array of 2-arrays of bin) straight from its bytes into `pairs`, each key and
 * value a view of the data: msgpackr made a Buffer of each and plainBytes another view,
 * two objects per key and value (1,200,000 for 150,000 instances) where one will do.
 * False, with `pairs` as it was, for anything else (the trailer, or bytes this does not
 * expect): the caller decodes those with msgpackr and judges them. Throws
 * CORRUPT_SNAPSHOT for keys out of order, as the caller would.
 */
function readPairs(body: Uint8Array, pairs: Pair[]): boolean {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const end = body.byteLength;
  const head = body[0]!;
  let count: number;
  let at: number;
  if (head >= 0x90 && head <= 0x9f) {
    count = head & 0x0f;
    at = 1;
  } else if (head === 0xdc && end >= 3) {
    count = view.getUint16(1);
    at = 3;
  } else if (head === 0xdd && end >= 5) {
    count = view.getUint32(1);
    at = 5;
  } else {
    return false;
  }
  const before = pairs.length;
  const bin = (): Uint8Array | undefined => {
    if (at + 2 > end) return undefined;
    const tag = body[at]!;
    let len: number;
    if (tag === 0xc4) {
      len = body[at + 1]!;
      at += 2;
    } else if (tag === 0xc5 && at + 3 <= end) {
      len = view.getUint16(at + 1);
      at += 3;
    } else if (tag === 0xc6 && at + 5 <= end) {
      len = view.getUint32(at + 1);
      at += 5;
    } else {
      return undefined;
    }
    if (at + len > end) return undefined;
    const bytes = new Uint8Array(body.buffer, body.byteOffset + at, len);
    at += len;
    return bytes;
  };
  for (let i = 0; i < count; i++) {
    const key = body[at++] === 0x92 ? bin() : undefined;
    const value = key === undefined ? undefined : bin();
    if (key === undefined || value === undefined) {
      pairs.length = before;
      return false;
    }
    const prev = pairs[pairs.length - 1];
    if (prev !== undefined && compareBytes(prev[0], key) >= 0)
      throw corrupt(`keys out of order (or repeated) at pair ${pairs.length}`);
    pairs.push([key, value]);
  }
  if (at !== end) {
    pairs.length = before;
    return false;
  }
  return true;
}

function checkHeader(rec: unknown): void {
  const h = rec as { format?: unknown; kind?: unknown } | null;
  if (typeof h !== 'object' || h === null || h.kind !== SNAPSHOT_KIND)
    throw corrupt('data does not start with a snapshot header');
  if (h.format !== SNAPSHOT_DATA_FORMAT) {
    throw new StorageError(
      'UNKNOWN_FORMAT',
      `snapshot data is in format ${JSON.stringify(h.format)}; this build reads format ${SNAPSHOT_DATA_FORMAT} only`,
    );
  }
}

const corrupt = (what: string) => new StorageError('CORRUPT_SNAPSHOT', `snapshot data is damaged: ${what}`);

/** The applied position and configuration that the reserved `sm` keys describe, if any. */
export interface SmPosition {
  readonly applied: { index: number; term: number } | undefined;
  readonly conf: ConfState | undefined;
}

/** Reads the reserved keys out of a list of pairs (state machine contents). */
export function positionOf(pairs: Iterable<Pair>): SmPosition {
  let applied: SmPosition['applied'];
  let conf: ConfState | undefined;
  for (const [k, v] of pairs) {
    if (bytesEqual(k, SM_APPLIED_KEY_BYTES)) applied = decodeReserved('applied', v, parseApplied);
    else if (bytesEqual(k, SM_CONF_KEY_BYTES)) conf = decodeReserved('conf', v, parseConfState);
  }
  return { applied, conf };
}

function decodeReserved<T>(what: string, v: Uint8Array, parse: (raw: unknown) => T | undefined): T {
  const decoded = tryDecode(v);
  const parsed = decoded.ok ? parse(decoded.value) : undefined;
  if (parsed === undefined) {
    throw new StorageError('INVALID_STATE_MACHINE', `the state machine's reserved ${what} key holds an invalid value`);
  }
  return parsed;
}

/**
 * The snapshot meta that state machine contents stand for: the applied position and
 * conf stored inside them, or `compaction` when the state machine is empty of them.
 */
export function metaFor(position: SmPosition, compaction: SnapshotMeta): SnapshotMeta {
  const { applied, conf } = position;
  if (applied === undefined) return compaction;
  if (conf === undefined) {
    if (applied.index === compaction.index) return { ...applied, conf: compaction.conf };
    throw new StorageError(
      'INVALID_STATE_MACHINE',
      `the state machine records applied index ${applied.index} but no configuration (reserved key \\x00meta/conf)`,
    );
  }
  return { index: applied.index, term: applied.term, conf };
}

/**
 * The ops that turn the `sm` sublevel into exactly `pairs` (sorted, as decodeSnapshotData
 * returns them): a merge of the two in key order that deletes keys the snapshot lacks and
 * puts only what is new or changed. A follower that fell a little behind differs from the
 * leader's snapshot in a few thousand records, not in all of them: rewriting everything
 * (a delete and a put per key, 200,000+ ops in one synced batch for 100,000 instances)
 * took seconds; reading the current state to compare costs a fraction of that.
 */
export async function replaceOps(sm: SmSublevel, snapshotPairs: readonly Pair[]): Promise<SmOp[]> {
  // Node-local keys stay as they are on both sides (an older leader's snapshot still carries them).
  const pairs = snapshotPairs.some(([key]) => isNodeLocalSmKey(key))
    ? snapshotPairs.filter(([key]) => !isNodeLocalSmKey(key))
    : snapshotPairs;
  const ops: SmOp[] = [];
  let i = 0;
  try {
    for await (const batch of scanBatches<Uint8Array, Uint8Array>(sm)) {
      for (const [key, value] of batch) {
        if (isNodeLocalSmKey(key)) continue;
        let next = pairs[i];
        while (next !== undefined && compareBytes(next[0], key) < 0) {
          ops.push({ type: 'put', key: next[0], value: next[1] });
          next = pairs[++i];
        }
        if (next !== undefined && compareBytes(next[0], key) === 0) {
          if (compareBytes(next[1], value) !== 0) ops.push({ type: 'put', key: next[0], value: next[1] });
          i++;
        } else {
          ops.push({ type: 'del', key: plainBytes(key) });
        }
      }
    }
  } catch (err) {
    throw ioError('reading the state machine to replace it with a snapshot', err);
  }
  for (; i < pairs.length; i++) ops.push({ type: 'put', key: pairs[i]![0], value: pairs[i]![1] });
  return ops;
}

/**
 * Reads the whole `sm` sublevel through one iterator (LevelDB gives it an implicit
 * consistent snapshot) and encodes it into pieces (SnapshotWriter), node-local keys left
 * out; the meta comes from the same read.
 */
export async function readStateMachine(sm: SmSublevel): Promise<{ pieces: Uint8Array[]; position: SmPosition }> {
  const writer = new SnapshotWriter();
  const reserved: Pair[] = [];
  // Only the reads are LevelDB's: a failure of writer.add (a piece not allocated) is not
  // an I/O error and goes up as it is, the scan closed on the way (return()).
  const batches = scanBatches<Uint8Array, Uint8Array>(sm);
  try {
    for (;;) {
      let next: IteratorResult<Array<[Uint8Array, Uint8Array]>>;
      try {
        next = await batches.next();
      } catch (err) {
        throw ioError('reading the state machine for a snapshot', err);
      }
      if (next.done === true) break;
      for (const [k, v] of next.value) {
        if (isNodeLocalSmKey(k)) continue;
        if (bytesEqual(k, SM_APPLIED_KEY_BYTES) || bytesEqual(k, SM_CONF_KEY_BYTES)) reserved.push([k, v]);
        writer.add(plainBytes(k), plainBytes(v));
      }
    }
  } finally {
    await batches.return(undefined);
  }
  return { pieces: writer.finishPieces(), position: positionOf(reserved) };
}
