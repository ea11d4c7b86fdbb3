/**
 * Opens a node's one LevelDB and hands out its three sublevels. The format version is
 * written when the database is created and checked on every open, before anything else
 * reads the database.
 */
import { Level } from 'level';
import { decode, encode } from '../codec/index.js';
import { StorageError, ioError } from './errors.js';
import { LOG_SUBLEVEL, RAFT_KEYS, RAFT_SUBLEVEL, SM_SUBLEVEL } from './keys.js';

/** The on-disk format this build writes and the only one it reads. */
export const FORMAT_VERSION = 1;

export type RootDatabase = Level<Uint8Array, Uint8Array>;

const logSublevel = (db: RootDatabase) =>
  db.sublevel<Uint8Array, Uint8Array>(LOG_SUBLEVEL, { keyEncoding: 'view', valueEncoding: 'view' });
const raftSublevel = (db: RootDatabase) =>
  db.sublevel<string, Uint8Array>(RAFT_SUBLEVEL, { keyEncoding: 'utf8', valueEncoding: 'view' });
const smSublevel = (db: RootDatabase) =>
  db.sublevel<Uint8Array, Uint8Array>(SM_SUBLEVEL, { keyEncoding: 'view', valueEncoding: 'view' });

export type LogSublevel = ReturnType<typeof logSublevel>;
export type RaftSublevel = ReturnType<typeof raftSublevel>;
/** The state machine's sublevel: binary keys and values, owned by the registry. */
export type SmSublevel = ReturnType<typeof smSublevel>;

export interface NodeDatabase {
  readonly dir: string;
  /** The root database; write to several sublevels atomically with `db.batch(ops)` and `sublevel` on each op. */
  readonly db: RootDatabase;
  /** Raft log: 8-byte big-endian index → checksummed entry. */
  readonly log: LogSublevel;
  /** Format version, hard state, snapshot meta. */
  readonly raft: RaftSublevel;
  /** The registry's state machine. */
  readonly sm: SmSublevel;
}

/**
 * Opens (creating if missing) the node database in `dir`. Rejects with StorageError
 * `LOCKED` if another process has it open, `UNKNOWN_FORMAT` if it was written by an
 * unknown format version (or is not a Rollcall database), `IO` otherwise.
 */
export async function openNodeDatabase(dir: string): Promise<NodeDatabase> {
  const db: RootDatabase = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (err) {
    throw openError(dir, err);
  }
  const handle: NodeDatabase = { dir, db, log: logSublevel(db), raft: raftSublevel(db), sm: smSublevel(db) };
  try {
    await checkFormat(handle);
  } catch (err) {
    await db.close().catch((closeErr: unknown) => {
      throw new AggregateError([err, closeErr], `closing ${dir} after a failed open also failed`);
    });
    throw err;
  }
  return handle;
}

async function checkFormat({ dir, db, raft }: NodeDatabase): Promise<void> {
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
  if (version !== FORMAT_VERSION) {
    throw new StorageError(
      'UNKNOWN_FORMAT',
      `${dir} was written in storage format ${JSON.stringify(version)}; this build reads format ${FORMAT_VERSION} only`,
    );
  }
}

function openError(dir: string, err: unknown): StorageError {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  if (cause?.code === 'LEVEL_LOCKED') {
    return new StorageError('LOCKED', `${dir} is locked: another process has this node's database open`, { cause: err });
  }
  return ioError(`opening LevelDB in ${dir}`, err);
}
