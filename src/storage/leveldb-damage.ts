/**
 * LevelDB recovers from a damaged file of its own quietly: when a block of its log fails
 * its checksum at open it logs "(ignoring error) FILE: dropping N bytes; Corruption: ..."
 * to its info log (`LOG`), carries on without those records, and then writes the rest into
 * a new table and deletes the damaged file. The node would start, and serve, a state
 * machine with records missing (seen: 252 of 300 instances, with the applied index intact).
 *
 * So after every open the node reads what LevelDB wrote to `LOG` during that open (LevelDB
 * starts a fresh `LOG` per open), and if it reports damage, records it in a `DAMAGED` file
 * beside the database and refuses to start — on this start and on every later one, since
 * LevelDB will by then have deleted the evidence. The way back is the one for any damaged
 * member: remove it and add it back under a new id with an empty data directory.
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPLACE_MEMBER_ADVICE, StorageError } from './errors.js';

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
  throw new StorageError('CORRUPT_STATE', `${dir} was found damaged by an earlier start (${path}): ${text.trim()}; refusing to start. ${REPLACE_MEMBER_ADVICE}`);
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
export async function refuseIfLevelDbRepaired(dir: string): Promise<void> {
  let infoLog: string;
  try {
    infoLog = await readFile(join(dir, 'LOG'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // LevelDB wrote no info log
    throw new StorageError('IO', `reading ${join(dir, 'LOG')}: ${(err as Error).message}`, { cause: err });
  }
  const lines = damageReported(infoLog);
  if (lines.length === 0) return;
  const what = `LevelDB dropped damaged records when opening it: ${lines.join('; ')}`;
  const marker = await open(join(dir, DAMAGE_MARKER), 'w');
  try {
    await marker.writeFile(`${what}\n`);
    await marker.sync();
  } finally {
    await marker.close();
  }
  throw new StorageError('CORRUPT_STATE', `${dir}: ${what}; its state machine may be missing records, refusing to start. ${REPLACE_MEMBER_ADVICE}`);
}
