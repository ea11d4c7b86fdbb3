/**
 * The history checker's command line, as a pure function (scripts/check-history.ts wires it
 * to process.argv, the file system and stdout).
 *
 *   check-history FILE.jsonl [--model register|registry] [--timeout-ms N]
 *
 * Prints one JSON line. Exit codes: 0 linearizable, 1 not linearizable, 2 unreadable input
 * or bad arguments (the line has an "error", and a "line" for a bad history line),
 * 3 unknown (the --timeout-ms limit was hit first).
 */
import { checkHistory, parseHistory } from './check.js';
import { HistoryParseError } from './history.js';
import { isModelName, type ModelName } from './models/index.js';

export interface CliResult {
  exitCode: 0 | 1 | 2 | 3;
  /** One line of JSON, without the trailing newline. */
  line: string;
}

export const USAGE = 'usage: check-history FILE.jsonl [--model register|registry] [--timeout-ms N]';

function usageError(problem: string): CliResult {
  return { exitCode: 2, line: JSON.stringify({ error: `${problem}; ${USAGE}` }) };
}

export function runCli(argv: readonly string[], readFile: (path: string) => string): CliResult {
  let file: string | undefined;
  let model: ModelName = 'register';
  let timeoutMs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const [flag, inline] = arg.startsWith('--') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    if (flag === '--model' || flag === '--timeout-ms') {
      const value = inline ?? argv[++i];
      if (value === undefined) return usageError(`${flag} needs a value`);
      if (flag === '--model') {
        if (!isModelName(value)) return usageError(`unknown model "${value}"`);
        model = value;
      } else {
        const n = Number(value);
        if (!(Number.isFinite(n) && n > 0)) return usageError(`--timeout-ms must be a positive number, got "${value}"`);
        timeoutMs = n;
      }
    } else if (flag === '--help' || flag === '-h') {
      return usageError('help requested');
    } else if (flag.startsWith('-') && flag !== '-') {
      return usageError(`unknown option "${flag}"`);
    } else if (file === undefined) {
      file = arg;
    } else {
      return usageError(`unexpected argument "${arg}"`);
    }
  }
  if (file === undefined) return usageError('no history file given');

  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    return { exitCode: 2, line: JSON.stringify({ error: `cannot read ${file}: ${(err as Error).message}` }) };
  }
  try {
    const events = parseHistory(text, { model });
    const result = checkHistory(events, timeoutMs === undefined ? { model } : { model, timeoutMs });
    const exitCode = result.linearizable === true ? 0 : result.linearizable === false ? 1 : 3;
    return { exitCode, line: JSON.stringify(result) };
  } catch (err) {
    if (err instanceof HistoryParseError) {
      return { exitCode: 2, line: JSON.stringify({ error: err.message, line: err.line, file }) };
    }
    throw err;
  }
}
