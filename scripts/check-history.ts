/**
 * Linearizability checker CLI (see docs/linearizability.md).
 *
 *   node dist/scripts/check-history.js FILE.jsonl [--model register|registry] [--timeout-ms N]
 *
 * Prints one JSON line; exits 0 linearizable, 1 not linearizable, 2 unreadable input or bad
 * arguments, 3 unknown (timed out). FILE "-" reads standard input.
 */
import { readFileSync } from 'node:fs';
import { runCli } from '../src/lincheck/index.js';

const { exitCode, line } = runCli(process.argv.slice(2), (path) => readFileSync(path === '-' ? 0 : path, 'utf8'));
process.stdout.write(`${line}\n`);
process.exitCode = exitCode;
