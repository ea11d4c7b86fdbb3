/**
 * Opens a node's LevelDB and hands out its sublevels. The format version is written when
 * the database is created and checked on every open, before anything else reads the
 * database. (The Raft log and hard state are not in LevelDB: see wal.ts.)
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
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
  /** The format this open migrated the database from, if it did (now FORMAT_VERSION). */
  readonly migratedFrom?: number;
}

export interface OpenNodeDatabaseOptions {
  /**
   * Migrate a database in an older format to FORMAT_VERSION (default true: a node starting).
   * A tool that only reads or clears a record passes false: it must not convert the
   * directory behind the build that runs the member, which may not read the new format.
   */
  readonly migrate?: boolean;
}

/**
 * Opens (creating if missing) the node database in `dir`; a format 1 database is migrated
 * to format 2 first (migrate-v1.ts) unless `migrate` is false. Rejects with StorageError
 * `LOCKED` if another process has it open, `FORMAT_TOO_NEW` if a newer build wrote it (a
 * higher format version than FORMAT_VERSION), `FORMAT_TOO_OLD` if it is in an older one
 * and `migrate` is false, `UNKNOWN_FORMAT` if it holds a version no build writes (or is
 * not a Rollcall database), CORRUPT_ENTRY/CORRUPT_STATE/LOG_GAP if a format 1 log to
 * migrate is damaged, `IO` otherwise.
 */
export async function openNodeDatabase(dir: string, options: OpenNodeDatabaseOptions = {}): Promise<NodeDatabase> {
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
  let migratedFrom: number | undefined;
  try {
    await refuseIfLevelDbRepaired(dir, tornTails);
    migratedFrom = await checkFormat(handle, options.migrate ?? true);
  } catch (err) {
    await db.close().catch((closeErr: unknown) => {
      throw new AggregateError([err, closeErr], `closing ${dir} after a failed open also failed`);
    });
    throw err;
  }
  return migratedFrom === undefined ? handle : { ...handle, migratedFrom };
}

/** Checks the format version, writing it into a new database; the format it migrated from, if it did. */
async function checkFormat(handle: NodeDatabase, migrate: boolean): Promise<number | undefined> {
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
    return undefined;
  }
  let version: unknown;
  try {
    version = decode(stored);
  } catch (err) {
    throw new StorageError('UNKNOWN_FORMAT', `${dir}: the format version record is not readable`, { cause: err });
  }
  if (version === 1) {
    if (!migrate)
      throw new StorageError(
        'FORMAT_TOO_OLD',
        `${dir} is in storage format 1, written by an older Rollcall build; this is not a node start, so it is not converted to format ${FORMAT_VERSION} (a node of this build converts it when it starts on it)`,
      );
    // The Raft log inside LevelDB: move it into the WAL (migrate-v1.ts), then read on as format 2.
    await migrateFromV1(handle, FORMAT_VERSION);
    return 1;
  }
  if (typeof version === 'number' && Number.isSafeInteger(version) && version > FORMAT_VERSION) {
    throw new StorageError('FORMAT_TOO_NEW', formatTooNewMessage(dir, version));
  }
  if (version !== FORMAT_VERSION) {
    throw new StorageError(
      'UNKNOWN_FORMAT',
      `${dir} was written in storage format ${JSON.stringify(version)}, which no Rollcall build writes; this build reads formats 1 (migrated at start) and ${FORMAT_VERSION}`,
    );
  }
  return undefined;
}

/**
 * The refusal of a data directory a newer build wrote. A format is never converted back
 * (a newer build may have changed what the older one would misread), so the advice is the
 * newer build, or a fresh member.
 */
export function formatTooNewMessage(dir: string, version: number): string {
  return (
    `${dir} is in storage format ${version}, written by a newer Rollcall build; this build reads storage formats up to ${FORMAT_VERSION}. ` +
    `Start this member with a build that reads format ${version} (the one that wrote it, or a later one). ` +
    'A data directory is never converted back to an older format: to run this build on this member, replace it ' +
    '(remove it from the cluster and add it back under a new id with an empty data directory); to take a whole ' +
    'cluster back, restore it from a backup taken before the upgrade with `rollcall snapshot restore` ' +
    '(docs/storage.md, "Format version")'
  );
}

/**
 * The format version recorded in the node database in `dir`, as stored (a number, or
 * whatever a damaged record decodes to), without creating, migrating or checking anything
 * else; null when there is no database or it has no version. For operators and tests: a
 * node reads it through openNodeDatabase.
 */
export async function readFormatVersion(dir: string): Promise<unknown> {
  // Not through createIfMissing: false, since classic-level makes the directory even then.
  try {
    await stat(join(dir, 'CURRENT'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(`reading ${dir}`, err);
  }
  const db: RootDatabase = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (err) {
    throw openError(dir, err);
  }
  try {
    const stored = await raftSublevel(db).get(RAFT_KEYS.format);
    return stored === undefined ? null : decode(stored);
  } catch (err) {
    throw ioError(`reading the format version of ${dir}`, err);
  } finally {
    await db.close();
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
