/**
 * A backup read out of a running node (GET /v1/snapshot): the state-machine sublevel as
 * of one applied index, streamed in the file format of backup-format.ts.
 *
 * Consistency: everything is read through one explicit LevelDB snapshot. The registry
 * writes each applied batch together with its applied index and revision in one atomic
 * LevelDB batch, so any LevelDB snapshot holds the state of exactly one applied index.
 * The snapshot is read twice: once for the header (the applied position, the revision,
 * the counts), once for the records.
 *
 * Writes do not wait for it: LevelDB snapshots cost writers nothing, every read is an
 * async native call (a batch of records per turn of the event loop), and the caller pulls
 * chunks only as fast as its client takes them (a Readable with backpressure).
 */
import { decode } from '../codec/index.js';
import type { NodeDatabase } from '../storage/database.js';
import { isNodeLocalSmKey, SM_APPLIED_KEY_BYTES, SM_CONF_KEY_BYTES } from '../storage/keys.js';
import {
  BACKUP_FORMAT,
  BACKUP_KIND,
  BackupEncoder,
  type BackupHeader,
  CHUNK_BYTES,
  countKeys,
  type Pair,
} from './backup-format.js';

const REVISION_KEY_BYTES = new TextEncoder().encode('\x00meta/revision');
const READ_BATCH = 1000;

export interface BackupOrigin {
  /** The node serving the backup. */
  readonly node: string;
  readonly clusterId: string | null;
  /** Wall clock for the header's createdAt (tests pass a fixed one). */
  readonly now?: () => Date;
}

export interface OpenBackup {
  readonly header: BackupHeader;
  /** The file, piece by piece; closes the LevelDB snapshot when it ends, fails or is abandoned (return()). */
  readonly body: AsyncGenerator<Buffer, void, undefined>;
  /** Releases the snapshot if `body` is never iterated. Idempotent. */
  close(): Promise<void>;
}

type Snapshot = ReturnType<NodeDatabase['db']['snapshot']>;

/** Takes the snapshot and reads the header; the caller must iterate `body` or call close(). */
export async function openBackup(database: NodeDatabase, origin: BackupOrigin): Promise<OpenBackup> {
  const snapshot: Snapshot = database.db.snapshot();
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => (closed ??= snapshot.close());
  try {
    const header = await readHeader(database, snapshot, origin);
    return { header, body: body(database, snapshot, header, close), close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function readHeader(database: NodeDatabase, snapshot: Snapshot, origin: BackupOrigin): Promise<BackupHeader> {
  const { sm } = database;
  const [applied, conf, revision] = await sm.getMany([SM_APPLIED_KEY_BYTES, SM_CONF_KEY_BYTES, REVISION_KEY_BYTES], {
    snapshot,
  });
  const appliedAt = applied === undefined ? { index: 0, term: 0 } : decode<{ index: number; term: number }>(applied);
  const confAt =
    conf === undefined ? { voters: [], learners: [] } : decode<{ voters: string[]; learners: string[] }>(conf);
  const revisionAt = revision === undefined ? 0 : decode<{ revision: number }>(revision).revision;
  const it = sm.keys({ snapshot });
  const keys: Uint8Array[] = [];
  let counts = { services: 0, instances: 0, sessions: 0, pairs: 0 };
  try {
    for (;;) {
      const batch = await it.nextv(READ_BATCH);
      if (batch.length === 0) break;
      keys.length = 0;
      for (const k of batch) if (!isNodeLocalSmKey(k)) keys.push(k);
      const c = countKeys(keys);
      counts = {
        services: counts.services + c.services,
        instances: counts.instances + c.instances,
        sessions: counts.sessions + c.sessions,
        pairs: counts.pairs + c.pairs,
      };
    }
  } finally {
    await it.close();
  }
  return {
    kind: BACKUP_KIND,
    format: BACKUP_FORMAT,
    clusterId: origin.clusterId,
    node: origin.node,
    createdAt: (origin.now ?? (() => new Date()))().toISOString(),
    revision: revisionAt,
    applied: { index: appliedAt.index, term: appliedAt.term },
    conf: { voters: [...confAt.voters], learners: [...confAt.learners] },
    counts,
  };
}

async function* body(
  database: NodeDatabase,
  snapshot: Snapshot,
  header: BackupHeader,
  close: () => Promise<void>,
): AsyncGenerator<Buffer, void, undefined> {
  const it = database.sm.iterator({ snapshot });
  try {
    const encoder = new BackupEncoder();
    yield encoder.start(header);
    let chunk: Pair[] = [];
    let bytes = 0;
    for (;;) {
      const batch = await it.nextv(READ_BATCH);
      if (batch.length === 0) break;
      for (const [k, v] of batch) {
        if (isNodeLocalSmKey(k)) continue;
        chunk.push([k, v]);
        bytes += k.byteLength + v.byteLength;
      }
      if (bytes >= CHUNK_BYTES) {
        yield encoder.chunk(chunk);
        chunk = [];
        bytes = 0;
      }
    }
    if (chunk.length > 0) yield encoder.chunk(chunk);
    yield encoder.end().bytes;
  } finally {
    await it.close();
    await close();
  }
}
