/**
 * `rollcall check`: the corruption check on demand (POST /v1/cluster/check; docs/operations.md,
 * Corruption checks). Prints each member's state-machine hash and verdict.
 */
import type { CorruptionReport } from '../../client/client.js';
import { type Command, withClient } from './command.js';
import { EXIT } from './exit-codes.js';
import { GLOBAL_HELP, parse, UsageError } from './flags.js';
import { help } from './instances.js';
import { jsonOut, table } from './output.js';

/** 0: every member agrees; 11: a member is corrupt; 8: some member could not be compared. */
export function checkExitCode(report: CorruptionReport): number {
  if (report.corrupt) return EXIT.CORRUPT;
  return report.members.every((m) => m.verdict === 'ok') ? EXIT.OK : EXIT.DEGRADED;
}

export const check: Command = {
  name: 'check',
  summary: "compare every member's state-machine hash (exit 0 same, 11 a member corrupt, 8 not all compared)",
  help: `Usage: rollcall check

Asks a node (the leader when it answers) to run the corruption check now: every member
hashes its state machine once it has applied the checker's applied index, and members at
the same index must have the same hash. Prints each member's index, hash and verdict:
  ok           the same hash as the others at its index
  CORRUPT      another hash: the member refuses reads from now on; replace it
  skipped      alone at its applied index this round (writes moved it on): run again
  unreachable  it did not answer
Exit 0 when every member is ok, 11 when a member is corrupt, 8 when none is corrupt but
some could not be compared. Needs an admin token when auth is on.

${GLOBAL_HELP}

Examples:
  rollcall check --endpoints http://10.0.0.1:8101
  rollcall check --json
`,
  async run(argv, io) {
    const { globals, positionals } = parse(argv, {}, true);
    if (globals.help) return help(io, this);
    if (positionals.length > 0)
      throw new UsageError(`rollcall check takes no arguments (got ${JSON.stringify(positionals[0])})`);
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
