/**
 * Format 1 → 2, run by openNodeDatabase on a format 1 database: the Raft log, hard state
 * and snapshot meta move from LevelDB (`!log!`, `!raft!hardstate`, `!raft!snapshot`) into
 * a new WAL; the state machine stays where it is.
 *
 * Crash-safe by order: (1) read and verify everything, as format 1's open did; (2) write
 * the WAL afresh (anything already in `wal/` is left over from an interrupted migration)
 * and make it durable; (3) one synced LevelDB batch deletes the old keys and sets the
 * format to 2. Until (3) the database is format 1 and the next open starts over; after
 * it, the WAL is the log.
 */
import { mkdir, rm } from 'node:fs/promises';
import type { Entry, HardState, SnapshotMeta } from '../../raft/messages.js';
import { emptyHardState } from '../../raft/storage.js';
import { encode } from '../codec/index.js';
import type { NodeDatabase, RootDatabase } from './database.js';
import { ioError, StorageError } from './errors.js';
import { RAFT_KEYS } from './keys.js';
import { decodeEntry, decodeHardState, decodeSnapshotMeta } from './values.js';
import { entryItem, hardStateItem, snapshotItem } from './wal/format.js';
import { syncDir, Wal, walDir } from './wal/wal.js';

const V1_HARD_STATE = 'hardstate';
const V1_SNAPSHOT = 'snapshot';
const ITERATOR_BATCH = 1024;

const v1Log = (db: RootDatabase) =>
  db.sublevel<Uint8Array, Uint8Array>('log', { keyEncoding: 'view', valueEncoding: 'view' });
type V1Log = ReturnType<typeof v1Log>;

/** The index an 8-byte big-endian format 1 log key holds. */
function v1Index(key: Uint8Array): number | undefined {
  if (key.byteLength !== 8) return undefined;
  const view = new DataView(key.buffer, key.byteOffset, 8);
  return view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
}

export async function migrateFromV1(database: NodeDatabase, format: number): Promise<void> {
  const { dir, db, raft } = database;
  const log = v1Log(db);
  const { hardState, snapMeta } = await readState(database);
  const { entries, keys } = await readLog(dir, log, snapMeta.index);

  const wdir = walDir(dir);
  try {
    await rm(wdir, { recursive: true, force: true });
    await mkdir(wdir);
    await syncDir(dir);
  } catch (err) {
    throw ioError(`preparing ${wdir} for the format 1 → 2 migration`, err);
  }
  const { wal } = await Wal.open(wdir, format, () => undefined);
  try {
    await wal.write(entries.map(entryItem), true, {
      last: snapMeta.index,
      state: [snapshotItem(snapMeta), hardStateItem(hardState)],
    });
  } catch (err) {
    throw ioError(`writing the WAL while migrating ${dir} from format 1`, err);
  } finally {
    await wal.close();
  }

  try {
    const batch = db.batch();
    for (const key of keys) batch.del(key, { sublevel: log });
    batch.del(V1_HARD_STATE, { sublevel: raft });
    batch.del(V1_SNAPSHOT, { sublevel: raft });
    batch.put(RAFT_KEYS.format, encode(format), { sublevel: raft });
    await batch.write({ sync: true });
  } catch (err) {
    throw ioError(`switching ${dir} to format ${format}`, err);
  }
}

async function readState({ dir, raft }: NodeDatabase): Promise<{ hardState: HardState; snapMeta: SnapshotMeta }> {
  let hsBytes: Uint8Array | undefined;
  let metaBytes: Uint8Array | undefined;
  try {
    [hsBytes, metaBytes] = await raft.getMany([V1_HARD_STATE, V1_SNAPSHOT]);
  } catch (err) {
    throw ioError(`reading the format 1 raft state of ${dir}`, err);
  }
  let hardState = emptyHardState;
  if (hsBytes !== undefined) {
    const hs = decodeHardState(hsBytes);
    if (typeof hs === 'string')
      throw new StorageError('CORRUPT_STATE', `${dir}: the stored hard state is damaged: ${hs}`);
    hardState = hs;
  }
  let snapMeta: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };
  if (metaBytes !== undefined) {
    const meta = decodeSnapshotMeta(metaBytes);
    if (typeof meta === 'string')
      throw new StorageError('CORRUPT_STATE', `${dir}: the stored snapshot meta is damaged: ${meta}`);
    snapMeta = meta;
  }
  return { hardState, snapMeta };
}

/** Format 1's log: 8-byte big-endian index keys; verified as format 1's open did. */
async function readLog(dir: string, log: V1Log, snapIndex: number): Promise<{ entries: Entry[]; keys: Uint8Array[] }> {
  const entries: Entry[] = [];
  const keys: Uint8Array[] = [];
  let expected = snapIndex + 1;
  const it = log.iterator();
  try {
    for (;;) {
      let batch: [Uint8Array, Uint8Array][];
      try {
        batch = await it.nextv(ITERATOR_BATCH);
      } catch (err) {
        throw ioError(`reading the format 1 log of ${dir}`, err);
      }
      if (batch.length === 0) break;
      for (const [key, value] of batch) {
        keys.push(key);
        const index = v1Index(key);
        const decoded = decodeEntry(value);
        if (index === undefined || !decoded.ok || decoded.entry.index !== index) {
          const at = index ?? expected;
          const why =
            index === undefined
              ? `a key of ${key.byteLength} bytes`
              : decoded.ok
                ? `it holds entry ${decoded.entry.index}`
                : decoded.reason;
          throw new StorageError(
            'CORRUPT_ENTRY',
            `${dir}: format 1 log entry ${at} is damaged (${why}); not migrating`,
            { index: at },
          );
        }
        if (index <= snapIndex) continue; // compacted; deleted with the rest
        if (index !== expected) {
          throw new StorageError(
            'LOG_GAP',
            `${dir}: format 1 log entry ${expected} is missing (next stored is ${index}); not migrating`,
            {
              index: expected,
            },
          );
        }
        entries.push(decoded.entry);
        expected++;
      }
    }
  } finally {
    await it.close();
  }
  return { entries, keys };
}
