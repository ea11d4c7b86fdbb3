/**
 * What a failed (or inconclusive) run leaves behind: the history as JSON lines (checkable
 * on its own), a sidecar with the case, the faults, the verdict and the sessions' verdicts,
 * the sessions' log (every open, keepalive and read of the session owners), and the two
 * commands that replay the check and rerun the case.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LinCase } from './case.js';
import type { RunResult } from './run.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, from scripts/lin or dist/scripts/lin. */
export const REPO_ROOT = here.includes(`${path.sep}dist${path.sep}`)
  ? path.resolve(here, '../../..')
  : path.resolve(here, '../..');

/** Where histories go by default (gitignored). */
export const DEFAULT_OUT_DIR = path.join(REPO_ROOT, 'test-output', 'lin');

export interface SavedRun {
  readonly history: string;
  readonly sidecar: string;
  /** The session owners' log, JSON lines (when the run had sessions). */
  readonly sessions: string | null;
}

/**
 * Writes `<dir>/<name>.jsonl` (the history), `<dir>/<name>.run.json` (case, faults with the
 * history's clock, verdict, failure window, sessions' verdicts), `<dir>/<name>.sessions.jsonl`
 * (the session owners' log, times in ms on the history's clock) and, given node logs,
 * `<dir>/<name>.log`.
 */
export async function saveRun(
  dir: string,
  name: string,
  result: RunResult,
  c?: LinCase,
  logs?: readonly string[],
): Promise<SavedRun> {
  await mkdir(dir, { recursive: true });
  const history = path.join(dir, `${name}.jsonl`);
  const sidecar = path.join(dir, `${name}.run.json`);
  await writeFile(history, `${result.events.map((e) => JSON.stringify(e)).join('\n')}\n`);
  const { events: _events, sessions, ...rest } = result;
  let sessionsFile: string | null = null;
  if (sessions) {
    sessionsFile = path.join(dir, `${name}.sessions.jsonl`);
    await writeFile(sessionsFile, `${sessions.events.map((e) => JSON.stringify(e)).join('\n')}\n`);
  }
  const { events: _sessionEvents, ...sessionVerdicts } = sessions ?? { events: [] };
  await writeFile(
    sidecar,
    `${JSON.stringify({ ...rest, sessions: sessions ? sessionVerdicts : null, case: c ?? null }, null, 2)}\n`,
  );
  if (logs && logs.length > 0) await writeFile(path.join(dir, `${name}.log`), `${logs.join('\n')}\n`);
  return { history, sidecar, sessions: sessionsFile };
}

/** Whether a run failed: not linearizable (or no verdict), a problem, or a false expiry. */
export function runFailed(result: RunResult): boolean {
  return result.verdict !== true || result.problems.length > 0 || (result.sessions?.falseExpiries.length ?? 0) > 0;
}

function hasNpmScript(name: string): boolean {
  try {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      scripts?: Record<string, string>;
    };
    return pkg.scripts?.[name] !== undefined;
  } catch {
    return false;
  }
}

/** The one command that checks a saved history again. */
export function replayCommand(historyFile: string): string {
  const rel = path.relative(REPO_ROOT, historyFile) || historyFile;
  return hasNpmScript('check-history') || !existsSync(path.join(REPO_ROOT, 'dist/scripts/check-history.js'))
    ? `npm run --silent check-history -- ${rel} --model registry`
    : `node dist/scripts/check-history.js ${rel} --model registry`;
}

/** The one command that reruns the case of `seed` (same workload and faults; real timing). */
export function rerunCommand(seed: number, testFile: string): string {
  return `SEED=${seed} npx vitest run ${testFile}`;
}

/** A human summary of a run, with the failure's place and the commands. */
export function describeRun(result: RunResult, saved?: SavedRun, rerun?: string): string {
  const s = result.stats;
  const lines = [
    `seed ${result.seed}: linearizable=${String(result.verdict)}; ${s.ops} ops (${s.ok} ok, ${s.fail} fail, ${s.info} info, ${s.pending} pending); ` +
      `faults ${result.faults.map((f) => `${f.kind}${f.node ? `(${f.node}${f.wasLeader ? ', leader' : ''})` : ''}${f.error ? ` [${f.error}]` : ''}`).join(', ') || 'none'}; ` +
      `settled=${result.settled}; ${result.elapsedMs} ms`,
  ];
  for (const f of result.faults)
    if ((f.kind === 'rejoin' || f.kind === 'netsplit') && f.detail) lines.push(`  ${f.kind}: ${f.detail}`);
  if (result.check.failure) lines.push(`  ${result.check.failure.message}`);
  if (result.verdict === 'unknown') lines.push(`  the checker ran out of time after ${result.check.elapsedMs} ms`);
  for (const p of result.problems) lines.push(`  problem: ${p.step}: ${p.message.split('\n')[0]}`);
  const ss = result.sessions;
  if (ss) {
    const count = (v: string) => ss.sessions.filter((x) => x.verdict === v).length;
    lines.push(
      `  sessions: ${ss.sessions.length} (${count('alive')} alive to the end, ${count('lapsed')} lapsed legitimately, ${ss.falseExpiries.length} FALSE EXPIRIES); ` +
        `keepalives ${ss.keepalives.ok} ok, ${ss.keepalives.failed} attempts without an answer${Object.keys(ss.unexpected).length > 0 ? `; unexpected answers ${JSON.stringify(ss.unexpected)}` : ''}`,
    );
    for (const v of ss.sessions)
      if (v.verdict === 'false-expiry' || v.verdict === 'lapsed')
        lines.push(`  ${v.verdict === 'false-expiry' ? 'false expiry' : 'lapsed'}: ${v.summary}`);
    const faults = result.faults
      .map(
        (f) =>
          `${f.kind}${f.node ? `(${f.node})` : ''} ${(f.start / 1e9).toFixed(3)}-${f.end === null ? '?' : (f.end / 1e9).toFixed(3)} s`,
      )
      .join(', ');
    if (ss.falseExpiries.length > 0) lines.push(`  faults on the same clock: ${faults || 'none'}`);
  }
  if (saved) {
    lines.push(
      `  history: ${path.relative(REPO_ROOT, saved.history)} (faults and case: ${path.relative(REPO_ROOT, saved.sidecar)})`,
    );
    if (saved.sessions) lines.push(`  sessions log: ${path.relative(REPO_ROOT, saved.sessions)}`);
    lines.push(`  replay the check: ${replayCommand(saved.history)}`);
  }
  if (rerun) lines.push(`  rerun the case:   ${rerun}`);
  return lines.join('\n');
}
