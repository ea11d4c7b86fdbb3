/**
 * LevelDB recovers from a damaged file of its own quietly: when a block of its log fails
 * its checksum at open it logs "(ignoring error) FILE: dropping N bytes; Corruption: ..."
 * to its info log (`LOG`), carries on without those records, and then writes the rest into
 * a new table and deletes the damaged file. The node would start, and serve, a state
 * machine with records missing (seen: 252 of 300 instances, with the applied index intact).
 *
 * Not all of that is damage, though: state-machine batches are written without fsync (the
 * Raft WAL is synced and replays them), so after a power loss the newest log can end in a
 * torn batch that LevelDB reports the same way. Dropping a torn tail is harmless (whole
 * batches go, each with its applied index: the state machine is just older).
 *
 * So before LevelDB opens, the node reads its log files itself (leveldb-log-scan.ts): damage
 * with valid records after it refuses to start; a torn tail is let through. After the open,
 * it reads what LevelDB wrote to `LOG` during that open (a fresh `LOG` per open), and damage
 * reported in any file it did not already judge a torn tail refuses too. A refusal is
 * recorded in a `DAMAGED` file beside the database and holds on every later start, since
 * LevelDB will by then have deleted the evidence. The way back is the one for any damaged
 * member: remove it and add it back under a new id with an empty data directory.
 *
 * LevelDB's tables are read with their block checksums unchecked (classic-level asks for
 * neither `verify_checksums` nor `paranoid_checks`), so a damaged table byte would be served
 * as a wrong value. Before the open the node also reads every block of every live table
 * and checks its CRC (leveldb-table-scan.ts); a mismatch refuses to start the same way.
 */
import { open, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPLACE_MEMBER_ADVICE, StorageError } from './errors.js';
import { scanLogFile } from './leveldb-log-scan.js';
import { checkTableBytes, liveTables, tablePath } from './leveldb-table-scan.js';

/** Written beside the database when LevelDB reported damage; its presence refuses every start. */
export const DAMAGE_MARKER = 'DAMAGED';

/** Refuses a data directory that an earlier start found damaged. */
export async function refuseIfMarkedDamaged(dir: string): Promise<void> {
  const path = join(dir, DAMAGE_MARKER);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new StorageError('IO', `reading ${path}: ${(err as Error).message}`, { cause: err });
  }
  throw new StorageError(
    'CORRUPT_STATE',
    `${dir} was found damaged by an earlier start (${path}): ${text.trim()}; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
  );
}

/**
 * Before LevelDB opens `dir`: refuses (and marks) a log file damaged in the middle; returns
 * the log files that end in a torn tail, which LevelDB may drop harmlessly.
 */
export async function checkLevelDbLogs(dir: string): Promise<Set<string>> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /^\d+\.log$/.test(n));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw new StorageError('IO', `listing ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const torn = new Set<string>();
  for (const name of names) {
    const path = join(dir, name);
    const scan = await scanLogFile(path);
    if (scan.firstBad === null) continue;
    if (!scan.validAfterBad) {
      torn.add(path);
      continue;
    }
    await markDamaged(dir, `${path} is damaged at offset ${scan.firstBad}, with intact records after it`);
    throw new StorageError(
      'CORRUPT_STATE',
      `${path}: LevelDB's log is damaged at offset ${scan.firstBad} with intact records after it; opening would drop the records in between and keep the later ones, leaving the state machine missing records; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
    );
  }
  return torn;
}

/** What checkLevelDbTables read (for the start log). */
export interface TableCheckSummary {
  readonly tables: number;
  readonly bytes: number;
  readonly blocks: number;
  readonly ms: number;
}

/**
 * Before LevelDB opens `dir`: checks every block of every live table file against its
 * checksum; refuses (and marks) a damaged one, naming it.
 */
export async function checkLevelDbTables(dir: string): Promise<TableCheckSummary> {
  const startedAt = performance.now();
  const summary = { tables: 0, bytes: 0, blocks: 0 };
  let tables: Awaited<ReturnType<typeof liveTables>>;
  try {
    tables = await liveTables(dir);
  } catch (err) {
    throw new StorageError('IO', `reading LevelDB's MANIFEST in ${dir}: ${(err as Error).message}`, { cause: err });
  }
  for (const table of tables ?? []) {
    let path: string | null;
    let bytes: Uint8Array;
    try {
      path = await tablePath(dir, table.number);
      // A live table that is missing: LevelDB refuses the open itself, naming it.
      if (path === null) continue;
      bytes = await readFile(path);
    } catch (err) {
      throw new StorageError('IO', `reading LevelDB's table ${table.number} in ${dir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const check = checkTableBytes(bytes, table.size);
    if (!check.ok) {
      await markDamaged(dir, `${path} is damaged: ${check.why}`);
      throw new StorageError(
        'CORRUPT_STATE',
        `${path}: LevelDB's table file is damaged (${check.why}); reads would return wrong records or fail; refusing to start. ${REPLACE_MEMBER_ADVICE}`,
      );
    }
    summary.tables++;
    summary.bytes += check.bytes;
    summary.blocks += check.blocks;
  }
  return { ...summary, ms: Math.round(performance.now() - startedAt) };
}

/** The lines in which LevelDB, during the open that wrote `LOG`, reported damage it skipped. */
export function damageReported(infoLog: string): string[] {
  return infoLog
    .split('\n')
    .filter((line) => /Corruption:|dropping \d+ bytes/.test(line))
    .map((line) => line.replace(/^\S+ \S+ /, '').trim()); // drop LevelDB's timestamp and thread id
}

/**
 * After LevelDB opened `dir`: if it reported damage, writes the marker (synced) and
 * rejects with CORRUPT_STATE naming the damaged file.
 */
export async function refuseIfLevelDbRepaired(dir: string, tornTails: ReadonlySet<string> = new Set()): Promise<void> {
  let infoLog: string;
  try {
    infoLog = await readFile(join(dir, 'LOG'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // LevelDB wrote no info log
    throw new StorageError('IO', `reading ${join(dir, 'LOG')}: ${(err as Error).message}`, { cause: err });
  }
  // A torn tail (judged before the open) is LevelDB dropping an unsynced batch: expected.
  const lines = damageReported(infoLog).filter((line) => ![...tornTails].some((path) => line.includes(`${path}:`)));
  if (lines.length === 0) return;
  const what = `LevelDB dropped damaged records when opening it: ${lines.join('; ')}`;
  await markDamaged(dir, what);
  throw new StorageError(
    'CORRUPT_STATE',
    `${dir}: ${what}; its state machine may be missing records, refusing to start. ${REPLACE_MEMBER_ADVICE}`,
  );
}

/** Records (synced) why `dir` is refused, so every later start refuses too. */
async function markDamaged(dir: string, what: string): Promise<void> {
  const marker = await open(join(dir, DAMAGE_MARKER), 'w');
  try {
    await marker.writeFile(`${what}\n`);
    await marker.sync();
  } finally {
    await marker.close();
  }
}
