/**
 * Soak: long linearizability campaigns against real local clusters.
 *
 *   node dist/scripts/soak.js --runs 200 --minutes 60
 *
 * Runs generated cases (workload + session owners + fault schedule, one per seed: base,
 * base+1, ...) one after another, each against a 3-node cluster of real processes, until
 * either bound is reached; a fresh cluster every --runs-per-cluster runs, or after a run
 * that left it unsettled. First, a self-check shows the harness still catches stale
 * reads. Progress goes to stderr; the summary (runs, operations, faults injected by kind,
 * sessions, violations and false expiries with their seeds, history files and replay
 * commands) is printed as JSON on stdout and written to --summary (default
 * <out>/summary.json). Exit code 0 when every run was linearizable, no session expired
 * falsely and no run had a problem (a node crashed, the cluster did not settle), 1 when
 * one of those (or a failed self-check) was found, 2 for bad arguments.
 *
 * Options:
 *   --runs N               at most N runs (default 100)
 *   --minutes M            stop starting runs after M minutes (default 30)
 *   --seed S               first seed (default: random)
 *   --run-ms MS            window of operations per run (default 8000)
 *   --runs-per-cluster K   restart the cluster every K runs (default 5)
 *   --kinds a,b            fault kinds (default all: kill,pause,isolate,oneway,transfer,membership,crash,rejoin,netsplit)
 *   --out DIR              histories of failing runs (default test-output/soak/<timestamp>)
 *   --summary FILE         where the summary goes (default <out>/summary.json)
 *   --keep-all             save every run's history, not only failing ones
 *   --trust-write-replies  record the version a write's answer shows even when it is another write's
 *   --skip-self-check      do not run the stale-read self-check first
 *   --skip-sessions        leave out the session owners (false expiries then go unjudged)
 *   --fuzz-requests N      first, N fuzzed HTTP requests against a one-node cluster
 *                          (scripts/fuzz/, the issue-22 goal: 0 × 5xx, 0 crashes, every error
 *                          in the catalogue shape, no state change on refusals; default
 *                          100000, 0 skips it); a failure there fails the soak
 */
import { randomInt } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type FuzzReport, fuzzHttp } from './fuzz/run.js';
import { caseForSeed } from './lin/case.js';
import { FAULT_KINDS, type FaultKind } from './lin/faults.js';
import { type LinCluster, startLinCluster } from './lin/lin-cluster.js';
import { DEFAULT_OUT_DIR, describeRun, REPO_ROOT, replayCommand, runFailed, saveRun } from './lin/report.js';
import { type RunResult, runCase } from './lin/run.js';
import { runStaleReads } from './lin/stale-reads.js';

interface Options {
  runs: number;
  minutes: number;
  seed: number;
  runMs: number;
  runsPerCluster: number;
  kinds: FaultKind[];
  out: string;
  summary: string;
  keepAll: boolean;
  trustWriteReplies: boolean;
  selfCheck: boolean;
  sessions: boolean;
  fuzzRequests: number;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      minutes: { type: 'string' },
      seed: { type: 'string' },
      'run-ms': { type: 'string' },
      'runs-per-cluster': { type: 'string' },
      kinds: { type: 'string' },
      out: { type: 'string' },
      summary: { type: 'string' },
      'keep-all': { type: 'boolean' },
      'trust-write-replies': { type: 'boolean' },
      'skip-self-check': { type: 'boolean' },
      'skip-sessions': { type: 'boolean' },
      'fuzz-requests': { type: 'string' },
    },
    strict: true,
  });
  const int = (name: string, v: string | undefined, def: number, min: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min)
      throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  const minutes = values.minutes === undefined ? 30 : Number(values.minutes);
  if (!(Number.isFinite(minutes) && minutes > 0))
    throw new UsageError(`--minutes must be a positive number, got ${JSON.stringify(values.minutes)}`);
  const kinds = (values.kinds
    ?.split(',')
    .map((k) => k.trim())
    .filter(Boolean) ?? [...FAULT_KINDS]) as FaultKind[];
  for (const k of kinds)
    if (!(FAULT_KINDS as readonly string[]).includes(k))
      throw new UsageError(`--kinds: unknown fault kind ${JSON.stringify(k)} (known: ${FAULT_KINDS.join(', ')})`);
  if (kinds.length === 0) throw new UsageError('--kinds: name at least one fault kind');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const out = path.resolve(values.out ?? path.join(path.dirname(DEFAULT_OUT_DIR), 'soak', stamp));
  return {
    runs: int('runs', values.runs, 100, 1),
    minutes,
    seed: int('seed', values.seed, randomInt(1, 2 ** 31 - 2 ** 20), 0),
    runMs: int('run-ms', values['run-ms'], 8000, 500),
    runsPerCluster: int('runs-per-cluster', values['runs-per-cluster'], 5, 1),
    kinds,
    out,
    summary: path.resolve(values.summary ?? path.join(out, 'summary.json')),
    keepAll: values['keep-all'] === true,
    trustWriteReplies: values['trust-write-replies'] === true,
    selfCheck: values['skip-self-check'] !== true,
    sessions: values['skip-sessions'] !== true,
    fuzzRequests: int('fuzz-requests', values['fuzz-requests'], 100_000, 0),
  };
}

interface Finding {
  seed: number;
  verdict: boolean | 'unknown';
  message: string;
  history: string;
  sidecar: string;
  replay: string;
  rerun: string;
}

interface FalseExpiry {
  seed: number;
  session: string;
  /** What the owner saw, when, and why it counts as false. */
  message: string;
  sessionsLog: string | null;
  rerun: string;
}

function rel(p: string): string {
  return path.relative(REPO_ROOT, p) || p;
}

function clock(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`soak: ${(err as Error).message}\n`);
    return 2;
  }
  const budgetMs = o.minutes * 60_000;
  const started = Date.now();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  let stopping = false;
  let lc: LinCluster | undefined;
  const onSignal = () => {
    if (stopping) {
      // Quit at once, but leave no node running.
      for (const n of lc?.cluster.nodes ?? []) n.proc?.kill('SIGKILL');
      process.exit(130);
    }
    stopping = true;
    fuzzAbort.abort();
    log('soak: stopping after this run (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const totals = { ops: 0, ok: 0, fail: 0, info: 0, pending: 0 };
  const byF: Record<string, { ok: number; fail: number; info: number; pending: number }> = {};
  const faults = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  let faultsOnLeader = 0;
  const violations: Finding[] = [];
  const unknown: Finding[] = [];
  const falseExpiries: FalseExpiry[] = [];
  const sessionTotals = { sessions: 0, alive: 0, lapsed: 0, falseExpiries: 0, keepalivesOk: 0, keepalivesFailed: 0 };
  const problems: { seed: number; step: string; message: string }[] = [];
  const unexpected: Record<string, number> = {};
  let laterStateReplies = 0;
  let linearizable = 0;
  let runs = 0;
  let clusters = 0;
  let selfCheck: { caught: boolean; message: string } | null = null;
  let fuzz: FuzzReport | null = null;
  const fuzzAbort = new AbortController();
  const runTimes: number[] = [];

  const caseOptions = { kinds: o.kinds };
  const rerunFor = (seed: number) =>
    `node dist/scripts/soak.js --runs 1 --seed ${seed} --run-ms ${o.runMs}${o.kinds.length < FAULT_KINDS.length ? ` --kinds ${o.kinds.join(',')}` : ''}` +
    `${o.trustWriteReplies ? ' --trust-write-replies' : ''}${o.sessions ? '' : ' --skip-sessions'} --skip-self-check`;

  let onCluster = 0;
  const cluster = async (): Promise<LinCluster> => {
    if (lc && onCluster < o.runsPerCluster) return lc;
    await lc?.close();
    lc = undefined;
    lc = await startLinCluster();
    clusters++;
    onCluster = 0;
    return lc;
  };

  log(
    `soak: up to ${o.runs} runs or ${o.minutes} min, seeds from ${o.seed}, ${o.runMs} ms of operations per run, faults ${o.kinds.join(',')}` +
      `${o.sessions ? ', with sessions' : ', no sessions'}; failing histories in ${rel(o.out)}`,
  );
  try {
    if (o.fuzzRequests > 0) {
      // The fuzzer runs its own one-node cluster (with tokens), started and stopped by it.
      const fuzzSeed = o.seed;
      log(`soak: fuzzing ${o.fuzzRequests} HTTP requests, seed ${fuzzSeed}`);
      fuzz = await fuzzHttp({
        seed: fuzzSeed,
        requests: o.fuzzRequests,
        hugeBytes: 10 * 1024 * 1024,
        signal: fuzzAbort.signal,
        onProgress: (line) => log(`soak: ${line}`),
      });
      log(
        `soak: fuzz ${fuzz.requests} requests in ${(fuzz.durationMs / 1000).toFixed(1)} s: ` +
          `${fuzz.failures.length === 0 && !fuzz.crashed ? 'every check held' : `${fuzz.failures.length} failure(s), replay with ${fuzz.replay}`}`,
      );
    }
    if (o.selfCheck && !stopping) {
      const c = await cluster();
      const r = await runStaleReads(c.view, { seed: o.seed, consistency: 'serializable' });
      onCluster++;
      const caught = r.verdict === false;
      selfCheck = { caught, message: r.check.failure?.message ?? `verdict ${String(r.verdict)}` };
      log(
        `soak: self-check (serializable reads on an isolated follower): ${caught ? 'caught, as it must be' : 'NOT CAUGHT: the harness is broken'}`,
      );
    }
    for (let i = 0; i < o.runs && !stopping && selfCheck?.caught !== false; i++) {
      const elapsed = Date.now() - started;
      const typical = runTimes.length > 0 ? Math.max(...runTimes.slice(-5)) : o.runMs + 5000;
      if (elapsed + typical > budgetMs) break;
      const seed = o.seed + i;
      const c = await cluster();
      const lcase = caseForSeed(seed, caseOptions);
      const result: RunResult = await runCase(c.view, lcase, {
        durationMs: o.runMs,
        nsPrefix: 'soak',
        checkTimeoutMs: 120_000,
        client: { trustWriteReplies: o.trustWriteReplies },
        sessions: o.sessions,
      });
      onCluster++;
      runs++;
      runTimes.push(result.elapsedMs);
      for (const k of ['ops', 'ok', 'fail', 'info', 'pending'] as const) totals[k] += result.stats[k];
      for (const [f, s] of Object.entries(result.stats.byF)) {
        const t = (byF[f] ??= { ok: 0, fail: 0, info: 0, pending: 0 });
        t.ok += s.ok;
        t.fail += s.fail;
        t.info += s.info;
        t.pending += s.pending;
      }
      for (const f of result.faults) {
        faults[f.kind]++;
        if (f.wasLeader) faultsOnLeader++;
      }
      laterStateReplies += result.notes.laterStateReplies;
      for (const [k, v] of Object.entries(result.notes.unexpected)) unexpected[k] = (unexpected[k] ?? 0) + v;
      for (const p of result.problems) problems.push({ seed, ...p });
      if (result.verdict === true) linearizable++;

      const ss = result.sessions;
      if (ss) {
        sessionTotals.sessions += ss.sessions.length;
        sessionTotals.alive += ss.sessions.filter((v) => v.verdict === 'alive').length;
        sessionTotals.lapsed += ss.sessions.filter((v) => v.verdict === 'lapsed').length;
        sessionTotals.falseExpiries += ss.falseExpiries.length;
        sessionTotals.keepalivesOk += ss.keepalives.ok;
        sessionTotals.keepalivesFailed += ss.keepalives.failed;
        for (const [k, v] of Object.entries(ss.unexpected))
          unexpected[`session ${k}`] = (unexpected[`session ${k}`] ?? 0) + v;
      }
      const bad = runFailed(result);
      const saved = bad || o.keepAll ? await saveRun(o.out, String(seed), result, lcase, c.logTail()) : undefined;
      for (const v of ss?.falseExpiries ?? []) {
        falseExpiries.push({
          seed,
          session: v.session,
          message: v.summary,
          sessionsLog: saved?.sessions ? rel(saved.sessions) : null,
          rerun: rerunFor(seed),
        });
      }
      if (result.verdict !== true && saved) {
        const finding: Finding = {
          seed,
          verdict: result.verdict,
          message: result.check.failure?.message ?? `the checker gave no verdict within ${result.check.elapsedMs} ms`,
          history: rel(saved.history),
          sidecar: rel(saved.sidecar),
          replay: replayCommand(saved.history),
          rerun: rerunFor(seed),
        };
        (result.verdict === false ? violations : unknown).push(finding);
      }
      const faultText =
        result.faults.map((f) => `${f.kind}${f.node ? `(${f.node}${f.wasLeader ? '*' : ''})` : ''}`).join(' ') ||
        'none';
      const falseCount = ss?.falseExpiries.length ?? 0;
      const verdict =
        result.verdict === false
          ? 'VIOLATION'
          : result.verdict !== true
            ? 'unknown'
            : falseCount > 0
              ? 'FALSE-EXP'
              : 'ok';
      log(
        `[${String(i + 1).padStart(3)}/${o.runs} ${clock(Date.now() - started)}/${clock(budgetMs)}] seed ${seed} ${verdict.padEnd(9)} ` +
          `${result.stats.ops} ops (${result.stats.info} info)${ss ? ` sessions ${ss.sessions.length}${falseCount > 0 ? ` (${falseCount} false expiries)` : ''}` : ''} ` +
          `faults ${faultText} ${(result.elapsedMs / 1000).toFixed(1)} s` +
          `${result.problems.length > 0 ? ` problems: ${result.problems.map((p) => p.step).join('; ')}` : ''}`,
      );
      if (bad) log(describeRun(result, saved, rerunFor(seed)).replace(/^/gm, '    '));
      if (!result.settled) onCluster = o.runsPerCluster; // start a fresh cluster next time
    }
  } finally {
    await lc?.close();
  }

  const summary = {
    startedAt: new Date(started).toISOString(),
    elapsedMs: Date.now() - started,
    options: {
      runs: o.runs,
      minutes: o.minutes,
      seed: o.seed,
      runMs: o.runMs,
      runsPerCluster: o.runsPerCluster,
      kinds: o.kinds,
      trustWriteReplies: o.trustWriteReplies,
      sessions: o.sessions,
      fuzzRequests: o.fuzzRequests,
    },
    selfCheck,
    fuzz:
      fuzz === null
        ? null
        : {
            seed: fuzz.seed,
            requests: fuzz.requests,
            durationMs: fuzz.durationMs,
            crashed: fuzz.crashed,
            statuses: fuzz.statuses,
            allowed5xx: fuzz.allowed5xx,
            stateChecks: fuzz.stateChecks,
            failures: fuzz.failures,
            replay: fuzz.replay,
          },
    runs,
    clusters,
    linearizable,
    operations: { ...totals, byF },
    faults: { ...faults, total: Object.values(faults).reduce((a, b) => a + b, 0), onLeader: faultsOnLeader },
    sessions: o.sessions ? sessionTotals : null,
    violations,
    falseExpiries,
    unknown,
    problems,
    laterStateReplies,
    unexpected,
    out: rel(o.out),
  };
  const text = JSON.stringify(summary, null, 2);
  await mkdir(path.dirname(o.summary), { recursive: true });
  await writeFile(o.summary, `${text}\n`);
  process.stdout.write(`${text}\n`);
  log(
    `soak: ${fuzz ? `fuzz ${fuzz.requests} requests, ${fuzz.failures.length} failures; ` : ''}${runs} runs, ${totals.ops} operations, ${summary.faults.total} faults, ${violations.length} violations, ` +
      `${falseExpiries.length} false expiries, ${problems.length} run problems (a node crashed, the cluster did not settle), ${unknown.length} unknown; summary in ${rel(o.summary)}`,
  );
  // A crashed node or a cluster that never settled is a failure too, not only a bad history.
  const fuzzFailed = fuzz !== null && (fuzz.crashed || fuzz.failures.length > 0);
  return violations.length > 0 ||
    falseExpiries.length > 0 ||
    problems.length > 0 ||
    selfCheck?.caught === false ||
    fuzzFailed
    ? 1
    : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
