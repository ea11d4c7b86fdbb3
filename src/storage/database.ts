/**
 * Opens a node's LevelDB and hands out its sublevels. The format version is written when
 * the database is created and checked on every open, before anything else reads the
 * database. (The Raft log and hard state are not in LevelDB: see wal.ts.)
 */
import { readdir } from 'node:fs/promises';
import { Level } from 'level';
import { decode, encode } from '../codec/index.js';
import { ioError, StorageError } from './errors.js';
import { RAFT_KEYS, RAFT_SUBLEVEL, SM_SUBLEVEL } from './keys.js';
import {
  checkLevelDbLogs,
  checkLevelDbTables,
  refuseIfLevelDbRepaired,
  refuseIfMarkedDamaged,
  type TableCheckSummary,
} from './leveldb-damage.js';
import { migrateFromV1 } from './migrate-v1.js';
import { walDir } from './wal/wal.js';

/**
 * The on-disk format this build writes and the only one it reads. 1: the Raft log, hard
 * state and snapshot meta in LevelDB. 2: those in the WAL (`wal/`), the state machine in LevelDB.
 */
export const FORMAT_VERSION = 2;

export type RootDatabase = Level<Uint8Array, Uint8Array>;

const raftSublevel = (db: RootDatabase) =>
  db.sublevel<string, Uint8Array>(RAFT_SUBLEVEL, { keyEncoding: 'utf8', valueEncoding: 'view' });
const smSublevel = (db: RootDatabase) =>
  db.sublevel<Uint8Array, Uint8Array>(SM_SUBLEVEL, { keyEncoding: 'view', valueEncoding: 'view' });

export type RaftSublevel = ReturnType<typeof raftSublevel>;
/** The state machine's sublevel: binary keys and values, owned by the registry. */
export type SmSublevel = ReturnType<typeof smSublevel>;

export interface NodeDatabase {
  readonly dir: string;
  /** The root database; write to several sublevels atomically with `db.batch(ops)` and `sublevel` on each op. */
  readonly db: RootDatabase;
  /** The format version and, if this node has one, its cluster id (cluster-id.ts). */
  readonly raft: RaftSublevel;
  /** The registry's state machine. */
  readonly sm: SmSublevel;
  /** What the table check read before the open (leveldb-damage.ts), for the start log. */
  readonly tableCheck?: TableCheckSummary;
}

/**
 * Opens (creating if missing) the node database in `dir`; a format 1 database is migrated
 * to format 2 first (migrate-v1.ts). Rejects with StorageError `LOCKED` if another process
 * has it open, `UNKNOWN_FORMAT` if it was written by an unknown format version (or is not
 * a Rollcall database), CORRUPT_ENTRY/CORRUPT_STATE/LOG_GAP if a format 1 log to migrate
 * is damaged, `IO` otherwise.
 */
export async function openNodeDatabase(dir: string): Promise<NodeDatabase> {
  await refuseIfMarkedDamaged(dir);
  // LevelDB skips damaged records of its own log at open, quietly: see leveldb-damage.ts.
  const tornTails = await checkLevelDbLogs(dir);
  // LevelDB reads its tables without checking block checksums: see leveldb-damage.ts.
  const tables = await checkLevelDbTables(dir);
  const db: RootDatabase = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (err) {
    throw openError(dir, err);
  }
  const handle: NodeDatabase = { dir, db, raft: raftSublevel(db), sm: smSublevel(db), tableCheck: tables };
  try {
    await refuseIfLevelDbRepaired(dir, tornTails);
    await checkFormat(handle);
  } catch (err) {
    await db.close().catch((closeErr: unknown) => {
      throw new AggregateError([err, closeErr], `closing ${dir} after a failed open also failed`);
    });
    throw err;
  }
  return handle;
}

async function checkFormat(handle: NodeDatabase): Promise<void> {
  const { dir, db, raft } = handle;
  let stored: Uint8Array | undefined;
  try {
    stored = await raft.get(RAFT_KEYS.format);
  } catch (err) {
    throw ioError(`reading the format version of ${dir}`, err);
  }
  if (stored === undefined) {
    let empty: boolean;
    try {
      empty = (await db.keys({ limit: 1 }).all()).length === 0;
    } catch (err) {
      throw ioError(`reading ${dir}`, err);
    }
    if (!empty) {
      throw new StorageError(
        'UNKNOWN_FORMAT',
        `${dir} holds data but no Rollcall format version: not a Rollcall node database, or damaged`,
      );
    }
    await refuseOrphanWal(dir);
    try {
      await db.batch().put(RAFT_KEYS.format, encode(FORMAT_VERSION), { sublevel: raft }).write({ sync: true });
    } catch (err) {
      throw ioError(`writing the format version of ${dir}`, err);
    }
    return;
  }
  let version: unknown;
  try {
    version = decode(stored);
  } catch (err) {
    throw new StorageError('UNKNOWN_FORMAT', `${dir}: the format version record is not readable`, { cause: err });
  }
  if (version === 1) {
    // The Raft log inside LevelDB: move it into the WAL (migrate-v1.ts), then read on as format 2.
    await migrateFromV1(handle, FORMAT_VERSION);
    return;
  }
  if (version !== FORMAT_VERSION) {
    throw new StorageError(
      'UNKNOWN_FORMAT',
      `${dir} was written in storage format ${JSON.stringify(version)}; this build reads format ${FORMAT_VERSION} only`,
    );
  }
}

/** A new (empty) database beside an existing WAL: the state machine the log belongs to is gone. */
async function refuseOrphanWal(dir: string): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(walDir(dir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`listing ${walDir(dir)}`, err);
  }
  if (names.some((n) => n.endsWith('.wal'))) {
    throw new StorageError(
      'UNKNOWN_FORMAT',
      `${dir} has a Raft log (${walDir(dir)}) but no LevelDB state next to it: damaged, or the database was deleted on its own`,
    );
  }
}

function openError(dir: string, err: unknown): StorageError {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  if (cause?.code === 'LEVEL_LOCKED') {
    return new StorageError('LOCKED', `${dir} is locked: another process has this node's database open`, {
      cause: err,
    });
  }
  return ioError(`opening LevelDB in ${dir}`, err);
}
