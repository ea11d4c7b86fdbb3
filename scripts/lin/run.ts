/**
 * One run against a live cluster: session owners open their sessions and keep them alive
 * for the whole run; the clients play their workload for a bounded window while the
 * nemesis injects faults (and a straggler reads any removed node that still runs); then
 * heal, wait for the cluster to settle, read every key on every member (final reads, so
 * lost writes show), check every live session once more, and judge: the history with the
 * registry model, the sessions' expiries with `judgeExpiry`.
 */
import { type CheckResult, checkHistory, type HistoryEvent } from '../../src/lincheck/index.js';
import type { LinCase } from './case.js';
import { type ClientNotes, type ClientOptions, LinClient } from './client.js';
import { settle } from './cluster-control.js';
import type { ClusterView } from './cluster-view.js';
import type { FaultKind, PlannedFault } from './faults.js';
import { sleep } from './http.js';
import { type FaultRecord, Nemesis, type NemesisProblem } from './nemesis.js';
import { countOutcomes, HistoryRecorder } from './recorder.js';
import type { Interval } from './session-judge.js';
import { type SessionsPlan, type SessionsReport, SessionsWorkload } from './sessions.js';
import { keyRef, playClient } from './workload.js';

export interface ScenarioSpec {
  readonly seed: number;
  /** Namespace of this run's instances: runs on one cluster must not share one. */
  readonly ns: string;
  readonly keys: number;
  readonly clients: number;
  /** The window of operations, ms. */
  readonly durationMs: number;
  /** What the clients do until `deadline` (Date.now() ms) or `signal`; scripted scenarios may inject faults themselves. */
  readonly drive: (
    clients: readonly LinClient[],
    deadline: number,
    signal: AbortSignal,
    nemesis: Nemesis,
  ) => Promise<unknown>;
  readonly schedule?: readonly PlannedFault[];
  readonly client?: Omit<ClientOptions, 'signal'>;
  /** Bound for the checker (default 60 s): past it the verdict is "unknown". */
  readonly checkTimeoutMs?: number;
  readonly settleTimeoutMs?: number;
  /** Session owners kept alive through the run; none when absent. */
  readonly sessions?: SessionsPlan;
}

export interface OpStats {
  ops: number;
  ok: number;
  fail: number;
  info: number;
  pending: number;
  byF: Record<string, { ok: number; fail: number; info: number; pending: number }>;
}

export interface RunResult {
  readonly seed: number;
  readonly ns: string;
  readonly verdict: boolean | 'unknown';
  readonly check: CheckResult;
  readonly events: readonly HistoryEvent[];
  /** Every operation, final reads included. */
  readonly stats: OpStats;
  /** The operations of the window (before the final reads). */
  readonly windowStats: OpStats;
  /** Final reads (key x member) that got an answer, of all. */
  readonly finalReads: { readonly ok: number; readonly total: number };
  readonly faults: readonly FaultRecord[];
  readonly faultCounts: Record<FaultKind, number>;
  /** Steps of the nemesis or the heal that did not work (a restart that failed, a cluster that never settled). */
  readonly problems: readonly NemesisProblem[];
  readonly notes: ClientNotes;
  readonly settled: boolean;
  readonly elapsedMs: number;
  /** The sessions workload's verdicts (null when the run had none). A false expiry fails the run. */
  readonly sessions: SessionsReport | null;
}

export async function runScenario(view: ClusterView, spec: ScenarioSpec): Promise<RunResult> {
  const started = Date.now();
  const problems: NemesisProblem[] = [];
  const fatalBefore = view.fatalLog.length;
  if ((await settle(view, spec.settleTimeoutMs ?? 30_000)) === null)
    problems.push({ step: 'settle before the run', message: 'the cluster did not settle' });

  const recorder = new HistoryRecorder();
  const nemesis = new Nemesis(view, () => recorder.now());
  const sessions = spec.sessions
    ? new SessionsWorkload({ view, ns: spec.ns, plan: spec.sessions, now: () => recorder.now() / 1e6 })
    : null;
  const ac = new AbortController();
  const clients = Array.from(
    { length: spec.clients },
    (_, i) => new LinClient(i, `${spec.ns}-c${i}`, view, recorder, { ...spec.client, signal: ac.signal }),
  );
  const straggler = new LinClient(spec.clients, `${spec.ns}-straggler`, view, recorder, {
    ...spec.client,
    signal: ac.signal,
  });
  const reader = new LinClient(spec.clients + 1, `${spec.ns}-final`, view, recorder);
  let settled = false;
  let sessionsReport: SessionsReport | null = null;
  const finalReads = { ok: 0, total: 0 };
  let windowStats: OpStats;
  try {
    // The sessions are open (and their instances registered) before the first fault, and
    // kept alive until after the final reads.
    await sessions?.start();
    const deadline = Date.now() + spec.durationMs;
    const timer = setTimeout(() => ac.abort(), spec.durationMs);
    let nemesisDone = false;
    try {
      await Promise.all([
        spec.drive(clients, deadline, ac.signal, nemesis),
        nemesis.run(spec.schedule ?? [], ac.signal).finally(() => (nemesisDone = true)),
        readStragglers(straggler, view, spec.ns, spec.keys, () => nemesisDone),
      ]);
    } finally {
      clearTimeout(timer);
      ac.abort();
      await nemesis.heal();
      settled = (await settle(view, spec.settleTimeoutMs ?? 30_000)) !== null;
    }
    problems.push(...nemesis.problems);
    if (!settled)
      problems.push({
        step: 'settle after healing',
        message: 'the cluster did not settle (leader, membership, applied index) in time',
      });

    // Final reads: every key on every member, linearizable, after the faults are gone (a
    // read that gets no answer is tried again, at most three times).
    windowStats = opStats(recorder.events);
    for (const id of view.members) {
      for (let k = 0; k < spec.keys; k++) {
        finalReads.total++;
        for (let attempt = 0; attempt < 3; attempt++) {
          await reader.get(keyRef(spec.ns, k), { node: id }, 0);
          if (recorder.events.at(-1)?.type === 'ok') {
            finalReads.ok++;
            break;
          }
        }
      }
    }
    if (finalReads.ok < finalReads.total) {
      problems.push({
        step: 'final reads',
        message: `${finalReads.total - finalReads.ok} of ${finalReads.total} final reads got no answer after healing`,
      });
    }
    if (sessions) {
      sessionsReport = await sessions.finish(noMajority(nemesis.log, recorder.now()));
      for (const v of sessionsReport.sessions)
        if (v.verdict === 'not-opened') problems.push({ step: 'sessions', message: v.summary });
    }
  } catch (err) {
    await sessions?.stop();
    throw err;
  }

  for (const line of view.fatalLog.slice(fatalBefore))
    problems.push({ step: 'a node stopped on its own', message: line });

  const check = checkHistory(recorder.events, { model: 'registry', timeoutMs: spec.checkTimeoutMs ?? 60_000 });
  const notes = mergeNotes([...clients, straggler, reader].map((c) => c.notes));
  return {
    seed: spec.seed,
    ns: spec.ns,
    verdict: check.linearizable,
    check,
    events: recorder.events,
    stats: opStats(recorder.events),
    windowStats,
    finalReads,
    faults: nemesis.log,
    faultCounts: nemesis.counts(),
    problems,
    notes,
    settled,
    elapsedMs: Date.now() - started,
    sessions: sessionsReport,
  };
}

/**
 * When no majority of the cluster was up, from the nemesis log (ms on the run's clock): a
 * crash kills every member, until the last one is restarted. One fault runs at a time, and
 * every other fault leaves a majority of the voters up.
 */
export function noMajority(log: readonly FaultRecord[], nowNs: number): Interval[] {
  return log.filter((f) => f.kind === 'crash').map((f) => ({ start: f.start / 1e6, end: (f.end ?? nowNs) / 1e6 }));
}

/**
 * The straggler: while the nemesis runs, reads every key, linearizable, at each node that
 * was removed from the cluster but still runs (`view.lingering`), as a client with an old
 * list of nodes would. Whatever such a node answers must still be linearizable.
 */
async function readStragglers(
  c: LinClient,
  view: ClusterView,
  ns: string,
  keys: number,
  done: () => boolean,
): Promise<void> {
  let k = 0;
  while (!done()) {
    const nodes = [...view.lingering];
    if (nodes.length === 0) {
      await sleep(20);
      continue;
    }
    for (const node of nodes) {
      await c.get(keyRef(ns, k++ % keys), { node }, 0);
      await sleep(10);
    }
  }
}

export interface CaseRunOptions {
  readonly durationMs: number;
  /** Namespace prefix; the seed and a run tag are appended. */
  readonly nsPrefix?: string;
  readonly client?: Omit<ClientOptions, 'signal'>;
  readonly checkTimeoutMs?: number;
  /** Run the case's session owners (default true). */
  readonly sessions?: boolean;
}

/** Plays a generated case: its workload on every client, its fault schedule on the nemesis. */
export function runCase(view: ClusterView, c: LinCase, options: CaseRunOptions): Promise<RunResult> {
  const ns = `${options.nsPrefix ?? 'lin'}-${c.seed >>> 0}-${Date.now().toString(36)}`;
  return runScenario(view, {
    seed: c.seed,
    ns,
    keys: c.workload.keys,
    clients: c.workload.clients.length,
    durationMs: options.durationMs,
    drive: (clients, deadline, signal) =>
      Promise.all(clients.map((cl, i) => playClient(cl, c.workload.clients[i]!, ns, deadline, signal))),
    schedule: c.faults,
    ...(options.sessions === false ? {} : { sessions: c.sessions }),
    ...(options.client ? { client: options.client } : {}),
    ...(options.checkTimeoutMs !== undefined ? { checkTimeoutMs: options.checkTimeoutMs } : {}),
  });
}

export function opStats(events: readonly HistoryEvent[]): OpStats {
  const c = countOutcomes(events);
  const byF: OpStats['byF'] = {};
  for (const e of events) {
    const s = (byF[e.f] ??= { ok: 0, fail: 0, info: 0, pending: 0 });
    if (e.type === 'invoke') {
      s.pending++;
    } else {
      s.pending--;
      s[e.type]++;
    }
  }
  return { ...c, byF };
}

function mergeNotes(all: readonly ClientNotes[]): ClientNotes {
  const out: ClientNotes = { laterStateReplies: 0, laterStateSamples: [], unexpected: {} };
  for (const n of all) {
    out.laterStateReplies += n.laterStateReplies;
    out.laterStateSamples.push(...n.laterStateSamples.slice(0, Math.max(0, 5 - out.laterStateSamples.length)));
    for (const [k, v] of Object.entries(n.unexpected)) out.unexpected[k] = (out.unexpected[k] ?? 0) + v;
  }
  return out;
}
