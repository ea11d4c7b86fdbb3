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
import type { ConfState, SnapshotMeta } from '../../raft/messages.js';
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

/** Builds snapshot data incrementally. */
export class SnapshotWriter {
  private readonly parts: Uint8Array[] = [];
  private chunk: Pair[] = [];
  private chunkBytes = 0;
  private count = 0;

  constructor() {
    this.record({ format: SNAPSHOT_DATA_FORMAT, kind: SNAPSHOT_KIND });
  }

  add(key: Uint8Array, value: Uint8Array): void {
    this.chunk.push([key, value]);
    this.chunkBytes += key.byteLength + value.byteLength + 8;
    this.count++;
    if (this.chunkBytes >= CHUNK_BYTES) this.flush();
  }

  finish(): Uint8Array {
    const { out, parts } = this.seal();
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }

  /**
   * finish(), copying a few MiB per event-loop turn: the copy of a 50-MiB snapshot at once
   * held the loop for ~220 ms here (fresh pages fault in as they are written), and with it
   * every write the node was serving.
   */
  async finishInSlices(sliceBytes = 4 * 1024 * 1024): Promise<Uint8Array> {
    const { out, parts } = this.seal();
    let at = 0;
    let slice = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.byteLength;
      slice += p.byteLength;
      if (slice >= sliceBytes) {
        slice = 0;
        await nextTurn();
      }
    }
    return out;
  }

  private seal(): { out: Uint8Array; parts: readonly Uint8Array[] } {
    this.flush();
    this.record({ pairs: this.count });
    const total = this.parts.reduce((n, p) => n + p.byteLength, 0);
    return { out: new Uint8Array(total), parts: this.parts };
  }

  private flush(): void {
    if (this.chunk.length === 0) return;
    this.record(this.chunk);
    this.chunk = [];
    this.chunkBytes = 0;
  }

  private record(value: unknown): void {
    const body = encode(value);
    const head = new Uint8Array(8);
    const view = new DataView(head.buffer);
    view.setUint32(0, body.byteLength);
    view.setUint32(4, crc32(body));
    this.parts.push(head, body);
  }
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
 * consistent snapshot) and encodes it, node-local keys left out; the meta comes from the
 * same read.
 */
export async function readStateMachine(sm: SmSublevel): Promise<{ data: Uint8Array; position: SmPosition }> {
  const writer = new SnapshotWriter();
  const reserved: Pair[] = [];
  try {
    for await (const batch of scanBatches<Uint8Array, Uint8Array>(sm)) {
      for (const [k, v] of batch) {
        if (isNodeLocalSmKey(k)) continue;
        if (bytesEqual(k, SM_APPLIED_KEY_BYTES) || bytesEqual(k, SM_CONF_KEY_BYTES)) reserved.push([k, v]);
        writer.add(plainBytes(k), plainBytes(v));
      }
    }
  } catch (err) {
    throw ioError('reading the state machine for a snapshot', err);
  }
  return { data: await writer.finishInSlices(), position: positionOf(reserved) };
}
