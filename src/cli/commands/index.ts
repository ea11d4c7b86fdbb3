/**
 * The user commands of `rollcall` (everything but `server`), and their dispatch.
 * main.ts hands over any command named here.
 */

import { acl } from './acl.js';
import { check } from './check.js';
import { cluster, health } from './cluster.js';
import type { Command } from './command.js';
import { EXIT_CODES_HELP, reportError } from './exit-codes.js';
import { federation } from './federation.js';
import { deregister, get, list, register } from './instances.js';
import { type Io, processIo } from './output.js';
import { rules } from './rules.js';
import { session } from './session.js';
import { snapshot } from './snapshot.js';
import { watch } from './watch.js';

export const COMMANDS: readonly Command[] = [
  register,
  deregister,
  get,
  list,
  watch,
  session,
  cluster,
  health,
  check,
  rules,
  snapshot,
  federation,
  acl,
];

/** The command list for `rollcall --help`. */
export const COMMANDS_HELP = `${COMMANDS.map((c) => `  ${c.name.padEnd(12)}${c.summary}`).join('\n')}

Every command takes --endpoints (or ROLLCALL_ENDPOINTS), --token (or ROLLCALL_TOKEN),
--dc (or ROLLCALL_DC), --json and --timeout. Examples:
  rollcall register --endpoints http://127.0.0.1:8101 --namespace prod --service orders \\
    --id o1 --address 10.0.0.2 --port 9000
  rollcall list --namespace prod --service orders --json
  rollcall watch --namespace prod --service orders --initial
  rollcall cluster status

${EXIT_CODES_HELP}`;

export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Runs a user command; resolves with its exit code (usage errors included). */
export async function runCommand(command: Command, argv: readonly string[], io: Io = processIo): Promise<number> {
  try {
    return await command.run(argv, io);
  } catch (err) {
    return reportError(io, err, argv.includes('--json'));
  }
}
