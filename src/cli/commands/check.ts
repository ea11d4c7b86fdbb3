/**
 * `rollcall check`: the corruption check on demand (POST /v1/cluster/check; docs/operations.md,
 * Corruption checks). Prints each member's state-machine hash and verdict. With `--disarm
 * --data DIR`, clears the corruption mark of a stopped node instead (src/ops/corruption-check.ts).
 */
import type { CorruptionReport } from '../../client/client.js';
import { type Command, withClient } from './command.js';
import { EXIT, reportError } from './exit-codes.js';
import { GLOBAL_HELP, parse, UsageError } from './flags.js';
import { help } from './instances.js';
import { type Io, jsonOut, table } from './output.js';

const OPTIONS = {
  disarm: { type: 'boolean' },
  data: { type: 'string' },
} as const;

/** 0: every member agrees; 11: a member is corrupt; 8: some member could not be compared. */
export function checkExitCode(report: CorruptionReport): number {
  if (report.corrupt) return EXIT.CORRUPT;
  return report.members.every((m) => m.verdict === 'ok') ? EXIT.OK : EXIT.DEGRADED;
}

export const check: Command = {
  name: 'check',
  summary: "compare every member's state-machine hash (exit 0 same, 11 a member corrupt, 8 not all compared)",
  help: `Usage: rollcall check
       rollcall check --disarm --data DIR

Asks a node (the leader when it answers) to run the corruption check now: every member
hashes its state machine once it has applied the checker's applied index, and members at
the same index must have the same hash. Prints each member's index, hash and verdict:
  ok           the same hash as the others at its index
  CORRUPT      another hash: the member refuses reads from now on; replace it
  skipped      alone at its applied index this round (writes moved it on): run again
  unreachable  it did not answer
Exit 0 when every member is ok, 11 when a member is corrupt, 8 when none is corrupt but
some could not be compared. Needs an admin token when auth is on.

With --disarm --data DIR, clears the corruption mark a check left in the data directory
of a stopped node (as etcd's 'alarm disarm'), after its state was repaired in place or
the check was wrong: started again, it serves reads until a check finds it corrupt again.
Replacing the member needs no disarm. Exit 0 when the mark was cleared or there was none,
1 when the node still runs (stop it first) or DIR holds no node database.

Options:
  --disarm              clear the corruption mark of the stopped node in --data
  --data DIR            that node's data directory

${GLOBAL_HELP}

Examples:
  rollcall check --endpoints http://10.0.0.1:8101
  rollcall check --json
  rollcall check --disarm --data /var/lib/rollcall/n2
`,
  async run(argv, io) {
    const { values, globals, positionals } = parse(argv, OPTIONS, true);
    if (globals.help) return help(io, this);
    if (positionals.length > 0)
      throw new UsageError(`rollcall check takes no arguments (got ${JSON.stringify(positionals[0])})`);
    if (values.disarm === true || values.data !== undefined) {
      if (values.disarm !== true || values.data === undefined)
        throw new UsageError('--disarm and --data go together: rollcall check --disarm --data DIR');
      return disarm(io, values.data, globals.json);
    }
    return withClient(io, globals, async (client) => {
      const report = await client.checkCorruption();
      const code = checkExitCode(report);
      if (globals.json) {
        jsonOut(io, report);
        return code;
      }
      io.out(
        table(
          ['MEMBER', 'INDEX', 'HASH', 'KEYS', 'VERDICT', 'DETAIL'],
          report.members.map((m) => [
            m.id,
            m.index === null ? '-' : String(m.index),
            m.hash === null ? '-' : m.hash.slice(0, 16),
            m.keys === null ? '-' : String(m.keys),
            m.verdict === 'corrupt' ? 'CORRUPT' : m.verdict,
            m.verdict === 'ok' ? '' : (m.detail ?? ''),
          ]),
        ),
      );
      io.out(
        `checked by ${report.by} at applied index ${report.target}: ${report.corrupt ? 'CORRUPT' : code === EXIT.OK ? 'all members agree' : 'not every member could be compared'}\n`,
      );
      return code;
    });
  },
};

/** `--disarm --data DIR`: clears the stored corruption mark of a stopped node. */
async function disarm(io: Io, dir: string, json: boolean): Promise<number> {
  const { DisarmError, disarmCorruptionMark } = await import('../../ops/corruption-check.js');
  const { StorageError } = await import('../../storage/errors.js');
  let mark: Awaited<ReturnType<typeof disarmCorruptionMark>>;
  try {
    mark = await disarmCorruptionMark(dir);
  } catch (err) {
    // Expected refusals get their message alone; anything else goes the common way (with its stack).
    const message =
      err instanceof StorageError && err.code === 'LOCKED'
        ? `${dir} is in use: stop the node before disarming its corruption mark`
        : err instanceof DisarmError || err instanceof StorageError
          ? err.message
          : undefined;
    if (message === undefined) return reportError(io, err, json);
    const code = err instanceof StorageError ? err.code : 'NO_DATABASE';
    if (json) io.err(`${JSON.stringify({ error: { code, message } })}\n`);
    else io.err(`rollcall: ${message}\n`);
    return EXIT.ERROR;
  }
  if (json) {
    jsonOut(io, { dataDir: dir, disarmed: mark !== null, mark });
    return EXIT.OK;
  }
  io.out(
    mark === null
      ? `${dir} has no corruption mark: nothing to clear\n`
      : `cleared the corruption mark of ${dir} (set by ${mark.by} at ${new Date(mark.at).toISOString()}: ${mark.detail})\n` +
          'start the node: it serves reads again, until a corruption check finds its state differs again\n',
  );
  return EXIT.OK;
}
