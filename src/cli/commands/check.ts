/**
 * `rollcall check`: the corruption check on demand (POST /v1/cluster/check; docs/operations.md,
 * Corruption checks). Prints each member's state-machine hash and verdict. With `--disarm`,
 * clears members' corruption marks on the running cluster (POST /v1/cluster/check/disarm);
 * with `--disarm --data DIR`, the mark in a stopped node's data directory
 * (src/ops/corruption-check.ts).
 */
import type { CorruptionReport, DisarmReport } from '../../client/client.js';
import { type Command, withClient } from './command.js';
import { EXIT, reportError } from './exit-codes.js';
import { GLOBAL_HELP, parse, UsageError } from './flags.js';
import { help } from './instances.js';
import { type Io, jsonOut, table } from './output.js';

const OPTIONS = {
  disarm: { type: 'boolean' },
  data: { type: 'string' },
  member: { type: 'string' },
} as const;

/** 0: every member asked answered (its mark cleared, or it had none); 8: some member did not (its mark stays). */
export function disarmExitCode(report: DisarmReport): number {
  return report.members.every((m) => m.error === null) ? EXIT.OK : EXIT.DEGRADED;
}

/** 0: every member agrees; 11: a member is corrupt; 8: some member could not be compared. */
export function checkExitCode(report: CorruptionReport): number {
  if (report.corrupt) return EXIT.CORRUPT;
  return report.members.every((m) => m.verdict === 'ok') ? EXIT.OK : EXIT.DEGRADED;
}

export const check: Command = {
  name: 'check',
  summary: "compare every member's state-machine hash (exit 0 same, 11 a member corrupt, 8 not all compared)",
  help: `Usage: rollcall check
       rollcall check --disarm [--member ID]
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

With --disarm, clears the corruption mark a check left on members of the running cluster
(as etcd's 'alarm disarm'), through any node: every member, or --member ID. For a member
repaired in place, or a check judged wrong: it serves reads again at once, until a check
finds it corrupt again (so run 'rollcall check' after it). Replacing the member needs no
disarm. The node waits up to 5 s for its peer link to a member that has just restarted.
Prints what each member cleared. Exit 0 when every member asked answered (its mark
cleared, or it had none), 8 when some did not within those 5 s (down or cut off: its mark
stays), 5 when --member is not a member. Needs an admin token when auth is on.

With --disarm --data DIR, clears the mark in the data directory of a stopped node instead.
Exit 0 when the mark was cleared or there was none, 1 when the node still runs (stop it
first, or disarm it online without --data) or DIR holds no node database.

Options:
  --disarm              clear corruption marks instead of checking
  --member ID           with --disarm: only this member (default: every member)
  --data DIR            with --disarm: the data directory of a stopped node (offline)

${GLOBAL_HELP}

Examples:
  rollcall check --endpoints http://10.0.0.1:8101
  rollcall check --json
  rollcall check --disarm --member n2
  rollcall check --disarm --data /var/lib/rollcall/n2
`,
  async run(argv, io) {
    const { values, globals, positionals } = parse(argv, OPTIONS, true);
    if (globals.help) return help(io, this);
    if (positionals.length > 0)
      throw new UsageError(`rollcall check takes no arguments (got ${JSON.stringify(positionals[0])})`);
    if (values.disarm !== true && (values.data !== undefined || values.member !== undefined))
      throw new UsageError(
        `${values.data !== undefined ? '--data' : '--member'} goes with --disarm: rollcall check --disarm [--member ID | --data DIR]`,
      );
    if (values.disarm === true && values.data !== undefined && values.member !== undefined)
      throw new UsageError(
        "--member names a member of a running cluster; --data a stopped node's directory: give one of them",
      );
    if (values.member === '') throw new UsageError('--member needs a member id');
    if (values.disarm === true && values.data !== undefined) return disarm(io, values.data, globals.json);
    if (values.disarm === true) {
      const member = values.member;
      return withClient(io, globals, async (client) => {
        const report = await client.disarmCorruption(member);
        const code = disarmExitCode(report);
        if (globals.json) {
          jsonOut(io, report);
          return code;
        }
        io.out(
          table(
            ['MEMBER', 'RESULT', 'MARK'],
            report.members.map((m) => [
              m.id,
              m.error !== null ? `NOT REACHED (${m.error.code})` : m.disarmed ? 'disarmed' : 'no mark',
              m.error !== null
                ? m.error.message
                : m.mark === null
                  ? ''
                  : `set by ${m.mark.by} at ${new Date(m.mark.at).toISOString()}: ${m.mark.detail}`,
            ]),
          ),
        );
        const cleared = report.members.filter((m) => m.disarmed).length;
        io.out(
          `disarmed through ${report.by}: ${cleared} mark${cleared === 1 ? '' : 's'} cleared` +
            (code === EXIT.OK
              ? '; run `rollcall check`: a member whose state still differs is marked again\n'
              : '; some member did not answer and keeps its mark: run it again\n'),
        );
        return code;
      });
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
        ? `${dir} is in use: stop the node before disarming its corruption mark, or disarm it on the running cluster (rollcall check --disarm --member ID)`
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
