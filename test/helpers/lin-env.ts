/**
 * Settings and failure reports for the linearizability tests of real clusters.
 *
 *   SEED=n       rerun exactly the case of seed n (one run)
 *   LIN_RUNS=n   how many generated cases (default: per test file; seeds base, base+1, ...)
 *   LIN_MS=n     the window of operations per run, ms (default: per test file, 6000 unless it says)
 *   LIN_KEEP=1   save every history, not only failing ones
 *   LIN_SESSIONS=0  leave out the sessions workload (its false expiries then go unjudged)
 *   LIN_TRUST_WRITE_REPLIES=0  do not judge the version a write's answer shows (it is
 *                judged by default since answers are built at apply time; see
 *                docs/linearizability.md, "Write answers")
 */
import { randomInt } from 'node:crypto';
import type { LinCase } from '../../scripts/lin/case.js';
import { DEFAULT_OUT_DIR, describeRun, rerunCommand, runFailed, saveRun } from '../../scripts/lin/report.js';
import type { RunResult } from '../../scripts/lin/run.js';

function intEnv(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

export interface LinSettings {
  /** Seeds of the cases to run. */
  readonly seeds: readonly number[];
  readonly durationMs: number;
  readonly keepAll: boolean;
  readonly trustWriteReplies: boolean;
  /** Run the session owners (LIN_SESSIONS, default on). */
  readonly sessions: boolean;
}

export function linSettings(defaultRuns: number, defaultMs = 6000): LinSettings {
  const seed = intEnv('SEED');
  const base = seed ?? randomInt(1, 2 ** 31 - 64);
  const runs = seed !== undefined ? 1 : (intEnv('LIN_RUNS') ?? defaultRuns);
  return {
    seeds: Array.from({ length: runs }, (_, i) => base + i),
    durationMs: intEnv('LIN_MS') ?? defaultMs,
    keepAll: process.env.LIN_KEEP === '1',
    trustWriteReplies: process.env.LIN_TRUST_WRITE_REPLIES !== '0',
    sessions: process.env.LIN_SESSIONS !== '0',
  };
}

/**
 * Saves the run when it failed (or always, with keepAll) and returns the report: the
 * seed, the verdict and its window, the sessions' verdicts (every false expiry: which
 * session, what the owner saw, when, and why it counts as false), the history and
 * sessions files, the replay and rerun commands.
 */
export async function reportRun(
  result: RunResult,
  testFile: string,
  options: { keep: boolean; case?: LinCase; logs?: readonly string[]; name?: string },
): Promise<string> {
  const failed = runFailed(result);
  const saved =
    failed || options.keep
      ? await saveRun(DEFAULT_OUT_DIR, options.name ?? String(result.seed), result, options.case, options.logs)
      : undefined;
  return describeRun(result, saved, rerunCommand(result.seed, testFile));
}
