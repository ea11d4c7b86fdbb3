/**
 * One run against a live cluster: the clients play their workload for a bounded window
 * while the nemesis injects faults; then heal, wait for the cluster to settle, read every
 * key on every member (final reads, so lost writes show), and judge the history with the
 * registry model.
 */
import { checkHistory, type CheckResult, type HistoryEvent } from '../../src/lincheck/index.js';
import type { LinCase } from './case.js';
import { type ClientNotes, type ClientOptions, LinClient } from './client.js';
import { settle } from './cluster-control.js';
import type { ClusterView } from './cluster-view.js';
import type { FaultKind, PlannedFault } from './faults.js';
import { type FaultRecord, Nemesis, type NemesisProblem } from './nemesis.js';
import { countOutcomes, HistoryRecorder } from './recorder.js';
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
  readonly drive: (clients: readonly LinClient[], deadline: number, signal: AbortSignal, nemesis: Nemesis) => Promise<unknown>;
  readonly schedule?: readonly PlannedFault[];
  readonly client?: Omit<ClientOptions, 'signal'>;
  /** Bound for the checker (default 60 s): past it the verdict is "unknown". */
  readonly checkTimeoutMs?: number;
  readonly settleTimeoutMs?: number;
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
}

export async function runScenario(view: ClusterView, spec: ScenarioSpec): Promise<RunResult> {
  const started = Date.now();
  const problems: NemesisProblem[] = [];
  if ((await settle(view, spec.settleTimeoutMs ?? 30_000)) === null) problems.push({ step: 'settle before the run', message: 'the cluster did not settle' });

  const recorder = new HistoryRecorder();
  const nemesis = new Nemesis(view, () => recorder.now());
  const ac = new AbortController();
  const clients = Array.from(
    { length: spec.clients },
    (_, i) => new LinClient(i, `${spec.ns}-c${i}`, view, recorder, { ...spec.client, signal: ac.signal }),
  );
  const deadline = Date.now() + spec.durationMs;
  const timer = setTimeout(() => ac.abort(), spec.durationMs);
  let settled = false;
  try {
    await Promise.all([spec.drive(clients, deadline, ac.signal, nemesis), nemesis.run(spec.schedule ?? [], ac.signal)]);
  } finally {
    clearTimeout(timer);
    ac.abort();
    await nemesis.heal();
    settled = (await settle(view, spec.settleTimeoutMs ?? 30_000)) !== null;
  }
  problems.push(...nemesis.problems);
  if (!settled) problems.push({ step: 'settle after healing', message: 'the cluster did not settle (leader, membership, applied index) in time' });

  // Final reads: every key on every member, linearizable, after the faults are gone (a
  // read that gets no answer is tried again, at most three times).
  const windowStats = opStats(recorder.events);
  const reader = new LinClient(spec.clients, `${spec.ns}-final`, view, recorder);
  const finalReads = { ok: 0, total: 0 };
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
    problems.push({ step: 'final reads', message: `${finalReads.total - finalReads.ok} of ${finalReads.total} final reads got no answer after healing` });
  }

  const check = checkHistory(recorder.events, { model: 'registry', timeoutMs: spec.checkTimeoutMs ?? 60_000 });
  const notes = mergeNotes([...clients, reader].map((c) => c.notes));
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
  };
}

export interface CaseRunOptions {
  readonly durationMs: number;
  /** Namespace prefix; the seed and a run tag are appended. */
  readonly nsPrefix?: string;
  readonly client?: Omit<ClientOptions, 'signal'>;
  readonly checkTimeoutMs?: number;
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
    drive: (clients, deadline, signal) => Promise.all(clients.map((cl, i) => playClient(cl, c.workload.clients[i]!, ns, deadline, signal))),
    schedule: c.faults,
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
