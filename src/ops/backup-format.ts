/**
 * The backup file: what `GET /v1/snapshot` streams and `rollcall snapshot save|status|
 * restore` write and read. Format 1 (docs/operations.md, "The snapshot file"):
 *
 *   file    = magic | record(header) | record(chunk)* | record(end) | sha256
 *   magic   = the 8 bytes "RCSNAP\r\n" (a text-mode copy that rewrites line ends fails here)
 *   record  = u32 BE body length | u32 BE crc32(body) | body (msgpack)
 *   header  = { kind: 'rollcall-snapshot', format: 1, clusterId, node, createdAt,
 *               revision, applied: { index, term }, conf: { voters, learners },
 *               counts: { services, instances, sessions, pairs } }
 *   chunk   = [[key, value], ...]   state-machine records in LevelDB key order (~64 KiB)
 *   end     = { end: true, pairs }  the number of pairs again (catches a lost chunk)
 *   sha256  = 32 bytes: SHA-256 of every byte before it, magic included
 *
 * The header comes first, counts included, so `status` and a reader in a hurry know what
 * a file holds without reading it whole; it can, because the sender reads a LevelDB
 * snapshot twice (backup-stream.ts). The per-record CRC says where damage is; the
 * trailing SHA-256 says the file is the one the node sent, byte for byte.
 *
 * The records are framed like Raft snapshot data (src/storage/snapshot.ts) but this is its
 * own format with its own version: a backup outlives the build that wrote it.
 */
import { createHash, type Hash } from 'node:crypto';
import { decode, encode } from '../codec/index.js';
import { crc32 } from '../storage/checksum.js';

export const BACKUP_MAGIC = Buffer.from('RCSNAP\r\n', 'latin1');
export const BACKUP_KIND = 'rollcall-snapshot';
export const BACKUP_FORMAT = 1;
export const CHECKSUM_BYTES = 32;
const RECORD_HEAD_BYTES = 8;
/** Pairs are grouped into chunks of about this many bytes. */
export const CHUNK_BYTES = 64 * 1024;

export type Pair = readonly [key: Uint8Array, value: Uint8Array];

export interface BackupCounts {
  /** Services with at least one instance. */
  readonly services: number;
  readonly instances: number;
  readonly sessions: number;
  /** State-machine records in the file (everything above and the registry's bookkeeping). */
  readonly pairs: number;
}

export interface BackupHeader {
  readonly kind: typeof BACKUP_KIND;
  readonly format: typeof BACKUP_FORMAT;
  /** The cluster the snapshot was taken from (null: a cluster without an id). */
  readonly clusterId: string | null;
  /** The node that served it. */
  readonly node: string;
  /** ISO 8601, the serving node's clock. */
  readonly createdAt: string;
  readonly revision: number;
  /** The last Raft entry the state in the file reflects. */
  readonly applied: { readonly index: number; readonly term: number };
  /** The membership as of `applied` (restore replaces it). */
  readonly conf: { readonly voters: readonly string[]; readonly learners: readonly string[] };
  readonly counts: BackupCounts;
}

export type BackupProblem =
  /** Not a snapshot file at all (wrong magic), or empty. */
  | 'NOT_A_SNAPSHOT'
  /** Written in a format this build does not read. */
  | 'UNSUPPORTED_FORMAT'
  /** The file ends early. */
  | 'TRUNCATED'
  /** A checksum fails, or the contents contradict themselves. */
  | 'CORRUPT';

/** A snapshot file this build will not use; the message names the file and the problem. */
export class BackupFileError extends Error {
  override readonly name = 'BackupFileError';
  constructor(
    readonly problem: BackupProblem,
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${describeProblem(problem)}: ${detail}`);
  }
}

function describeProblem(problem: BackupProblem): string {
  switch (problem) {
    case 'NOT_A_SNAPSHOT':
      return 'not a Rollcall snapshot file';
    case 'UNSUPPORTED_FORMAT':
      return 'snapshot format not supported by this build';
    case 'TRUNCATED':
      return 'snapshot file is truncated';
    case 'CORRUPT':
      return 'snapshot file is corrupt';
  }
}

/**
 * Encodes a backup piece by piece, so it can be sent while it is read: `start`, then
 * `chunk` any number of times, then `end`. Every piece is fed to the running SHA-256.
 */
export class BackupEncoder {
  private readonly hash: Hash = createHash('sha256');
  private pairs = 0;
  private state: 'new' | 'started' | 'ended' = 'new';

  start(header: BackupHeader): Buffer {
    if (this.state !== 'new') throw new Error('BackupEncoder.start: already started');
    this.state = 'started';
    return this.emit([BACKUP_MAGIC, record(header)]);
  }

  /** One chunk record of `pairs` (keys in ascending order, continuing the previous chunk). */
  chunk(pairs: readonly Pair[]): Buffer {
    if (this.state !== 'started') throw new Error('BackupEncoder.chunk: not started, or ended');
    this.pairs += pairs.length;
    return this.emit([record(pairs.map(([k, v]) => [k, v]))]);
  }

  /** The end record and the checksum; the hex digest is returned for logs. */
  end(): { bytes: Buffer; sha256: string } {
    if (this.state !== 'started') throw new Error('BackupEncoder.end: not started, or ended');
    this.state = 'ended';
    const tail = this.emit([record({ end: true, pairs: this.pairs })]);
    const digest = this.hash.digest();
    return { bytes: Buffer.concat([tail, digest]), sha256: digest.toString('hex') };
  }

  private emit(parts: readonly Buffer[]): Buffer {
    const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    this.hash.update(out);
    return out;
  }
}

function record(value: unknown): Buffer {
  const body = encode(value);
  const out = Buffer.allocUnsafe(RECORD_HEAD_BYTES + body.byteLength);
  out.writeUInt32BE(body.byteLength, 0);
  out.writeUInt32BE(crc32(body), 4);
  out.set(body, RECORD_HEAD_BYTES);
  return out;
}

/** A whole backup, encoded at once (tests, tools). */
export function encodeBackup(
  header: Omit<BackupHeader, 'counts'> & { counts?: BackupCounts },
  pairs: readonly Pair[],
): Buffer {
  const enc = new BackupEncoder();
  const parts: Buffer[] = [enc.start({ ...header, counts: header.counts ?? countPairs(pairs) })];
  let chunk: Pair[] = [];
  let bytes = 0;
  for (const p of pairs) {
    chunk.push(p);
    bytes += p[0].byteLength + p[1].byteLength;
    if (bytes >= CHUNK_BYTES) {
      parts.push(enc.chunk(chunk));
      chunk = [];
      bytes = 0;
    }
  }
  if (chunk.length > 0) parts.push(enc.chunk(chunk));
  parts.push(enc.end().bytes);
  return Buffer.concat(parts);
}

export interface DecodedBackup {
  readonly header: BackupHeader;
  readonly pairs: Pair[];
  /** Hex SHA-256 of the file up to the trailer (the trailer itself, verified). */
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * Reads and verifies a whole backup: magic, every record's CRC, the header, key order,
 * the end record's count, the header's counts, and the SHA-256 trailer. Throws
 * BackupFileError naming `file` and what is wrong.
 */
export function decodeBackup(data: Uint8Array, file: string): DecodedBackup {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const fail = (problem: BackupProblem, detail: string) => new BackupFileError(problem, file, detail);
  if (buf.byteLength === 0) throw fail('NOT_A_SNAPSHOT', 'the file is empty');
  const magicSeen = buf.subarray(0, BACKUP_MAGIC.byteLength);
  if (!magicSeen.equals(BACKUP_MAGIC.subarray(0, magicSeen.byteLength))) {
    throw fail('NOT_A_SNAPSHOT', `it does not start with ${JSON.stringify(BACKUP_MAGIC.toString('latin1'))}`);
  }
  if (buf.byteLength < BACKUP_MAGIC.byteLength)
    throw fail('TRUNCATED', `it ends after ${buf.byteLength} bytes, inside the magic`);

  let at = BACKUP_MAGIC.byteLength;
  let header: BackupHeader | undefined;
  const pairs: Pair[] = [];
  let ended = false;
  let n = 0;
  while (!ended) {
    if (at >= buf.byteLength)
      throw fail('TRUNCATED', `it ends at byte ${at} after ${n} records, before the end record`);
    if (at + RECORD_HEAD_BYTES > buf.byteLength)
      throw fail('TRUNCATED', `it ends at byte ${buf.byteLength}, inside the head of record ${n} (at byte ${at})`);
    const len = buf.readUInt32BE(at);
    const sum = buf.readUInt32BE(at + 4);
    const start = at + RECORD_HEAD_BYTES;
    if (start + len > buf.byteLength) {
      throw fail(
        'TRUNCATED',
        `record ${n} at byte ${at} is ${len} bytes long but only ${buf.byteLength - start} remain (or its length is damaged)`,
      );
    }
    const body = buf.subarray(start, start + len);
    if (crc32(body) !== sum) throw fail('CORRUPT', `record ${n} at byte ${at} fails its CRC-32`);
    let value: unknown;
    try {
      value = decode(body);
    } catch (err) {
      throw fail(
        'CORRUPT',
        `record ${n} at byte ${at} is not msgpack (${err instanceof Error ? err.message : String(err)})`,
      );
    }
    if (n === 0) {
      header = parseHeader(value, fail);
    } else if (Array.isArray(value)) {
      for (const p of value as unknown[]) {
        if (!Array.isArray(p) || p.length !== 2 || !(p[0] instanceof Uint8Array) || !(p[1] instanceof Uint8Array)) {
          throw fail('CORRUPT', `record ${n} at byte ${at} holds something other than [key, value] pairs`);
        }
        const key = plain(p[0]);
        const prev = pairs[pairs.length - 1];
        if (prev !== undefined && Buffer.compare(prev[0], key) >= 0)
          throw fail('CORRUPT', `keys out of order (or repeated) at pair ${pairs.length}`);
        pairs.push([key, plain(p[1])]);
      }
    } else if (isRecord(value) && value['end'] === true && typeof value['pairs'] === 'number') {
      if (value['pairs'] !== pairs.length)
        throw fail('CORRUPT', `the end record counts ${value['pairs']} pairs, the file holds ${pairs.length}`);
      ended = true;
    } else {
      throw fail('CORRUPT', `record ${n} at byte ${at} is neither a chunk nor the end record`);
    }
    at = start + len;
    n++;
  }
  const left = buf.byteLength - at;
  if (left < CHECKSUM_BYTES) throw fail('TRUNCATED', `the SHA-256 trailer has ${left} of its ${CHECKSUM_BYTES} bytes`);
  if (left > CHECKSUM_BYTES)
    throw fail('CORRUPT', `${left - CHECKSUM_BYTES} unexpected bytes after the SHA-256 trailer`);
  const digest = createHash('sha256').update(buf.subarray(0, at)).digest();
  if (!digest.equals(buf.subarray(at)))
    throw fail(
      'CORRUPT',
      `the SHA-256 of the contents (${digest.toString('hex')}) does not match the trailer (${buf.subarray(at).toString('hex')})`,
    );
  const h = header!;
  const counted = countPairs(pairs);
  for (const k of ['services', 'instances', 'sessions', 'pairs'] as const) {
    if (counted[k] !== h.counts[k])
      throw fail('CORRUPT', `the header counts ${h.counts[k]} ${k}, the file holds ${counted[k]}`);
  }
  return { header: h, pairs, sha256: digest.toString('hex'), bytes: buf.byteLength };
}

function parseHeader(value: unknown, fail: (p: BackupProblem, d: string) => BackupFileError): BackupHeader {
  if (!isRecord(value) || value['kind'] !== BACKUP_KIND)
    throw fail('CORRUPT', 'the first record is not a snapshot header');
  if (value['format'] !== BACKUP_FORMAT) {
    throw fail(
      'UNSUPPORTED_FORMAT',
      `it is in format ${JSON.stringify(value['format'])}; this build reads format ${BACKUP_FORMAT}`,
    );
  }
  const { clusterId, node, createdAt, revision, applied, conf, counts } = value;
  const ok =
    (clusterId === null || typeof clusterId === 'string') &&
    typeof node === 'string' &&
    typeof createdAt === 'string' &&
    isCount(revision) &&
    isRecord(applied) &&
    isCount(applied['index']) &&
    isCount(applied['term']) &&
    isRecord(conf) &&
    isStrings(conf['voters']) &&
    isStrings(conf['learners']) &&
    isRecord(counts) &&
    (['services', 'instances', 'sessions', 'pairs'] as const).every((k) => isCount(counts[k]));
  if (!ok) throw fail('CORRUPT', 'the header lacks a field or has one of the wrong type');
  return value as unknown as BackupHeader;
}

const INSTANCE = 'i/'.charCodeAt(0);
const SERVICE = 'v/'.charCodeAt(0);
const SESSION = 's/'.charCodeAt(0);
const SLASH = '/'.charCodeAt(0);

/** Counts by the registry's key families (src/registry/persistence.ts): `i/`, `v/`, `s/`. */
export function countKeys(keys: Iterable<Uint8Array>): BackupCounts {
  let services = 0;
  let instances = 0;
  let sessions = 0;
  let pairs = 0;
  for (const k of keys) {
    pairs++;
    if (k.byteLength < 2 || k[1] !== SLASH) continue;
    if (k[0] === INSTANCE) instances++;
    else if (k[0] === SERVICE) services++;
    else if (k[0] === SESSION) sessions++;
  }
  return { services, instances, sessions, pairs };
}

export function countPairs(pairs: readonly Pair[]): BackupCounts {
  return countKeys(pairs.map(([k]) => k));
}

const plain = (b: Uint8Array): Uint8Array =>
  b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
