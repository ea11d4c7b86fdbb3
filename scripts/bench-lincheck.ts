/**
 * Linearizability checker benchmark: generated histories (linearizable by construction,
 * with crashed clients leaving info / missing completions), and the same with one read
 * corrupted so the checker must find and explain the violation.
 *
 *   node dist/scripts/bench-lincheck.js [--seed N] [--quick]
 *
 * Prints one line per workload: histories, operations, total and per-history times.
 */
import {
  type CheckResult,
  checkHistory,
  type HistoryEvent,
  type RandomPlanOptions,
  randomPlan,
  seededRandom,
  simulateHistory,
} from '../src/lincheck/index.js';

interface Workload {
  name: string;
  histories: number;
  plan: RandomPlanOptions;
  /** Corrupt one ok read in the middle, making the history non-linearizable. */
  corrupt?: boolean;
}

const args = process.argv.slice(2);
const seedArg = args.indexOf('--seed');
const seed = seedArg >= 0 ? Number(args[seedArg + 1]) : 1;
const quick = args.includes('--quick');

const workloads: Workload[] = [
  {
    name: 'register 1,000 ops x 5 processes, 1 key, 2% crashes',
    histories: 100,
    plan: { model: 'register', ops: 1000, workers: 5, crashRate: 0.02 },
  },
  {
    name: 'register 1,000 ops x 5 processes, 10 keys, 2% crashes',
    histories: 100,
    plan: { model: 'register', ops: 1000, workers: 5, keys: 10, crashRate: 0.02 },
  },
  {
    name: 'registry 1,000 ops x 5 processes, 1 instance, 2% crashes',
    histories: 100,
    plan: { model: 'registry', ops: 1000, workers: 5, crashRate: 0.02 },
  },
  {
    name: 'register 5,000 ops x 20 processes, 1 key, 1% crashes',
    histories: 1,
    plan: { model: 'register', ops: 5000, workers: 20, crashRate: 0.01 },
  },
  {
    name: 'register 5,000 ops x 20 processes, 10 keys, 1% crashes',
    histories: 1,
    plan: { model: 'register', ops: 5000, workers: 20, keys: 10, crashRate: 0.01 },
  },
  {
    name: 'register 5,000 ops x 50 processes, 1 key, no crashes',
    histories: 1,
    plan: { model: 'register', ops: 5000, workers: 50, crashRate: 0 },
  },
  {
    name: 'NOT linearizable: register 1,000 ops x 5 processes, 1 key, one read corrupted',
    histories: 20,
    plan: { model: 'register', ops: 1000, workers: 5, crashRate: 0.02 },
    corrupt: true,
  },
  {
    name: 'NOT linearizable: register 1,000 ops x 5 processes, 10 keys, one read corrupted',
    histories: 20,
    plan: { model: 'register', ops: 1000, workers: 5, keys: 10, crashRate: 0.02 },
    corrupt: true,
  },
];

/** Changes the value of the ok read nearest the middle of the history to one never written. */
function corruptRead(events: HistoryEvent[]): HistoryEvent[] {
  const reads = events.map((e, i) => [e, i] as const).filter(([e]) => e.type === 'ok' && e.f === 'read');
  const middle = reads[Math.floor(reads.length / 2)];
  if (middle === undefined) return events;
  return events.map((e, i) => (i === middle[1] ? { ...e, value: 'never-written' } : e));
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

console.log(`lincheck benchmark (seed ${seed}${quick ? ', quick' : ''}), node ${process.version}`);
// Warm up the JIT so the first workload's numbers are not mostly compilation.
for (let i = 0; i < 20; i++) {
  for (const model of ['register', 'registry'] as const) {
    checkHistory(
      simulateHistory(model, randomPlan(seededRandom(1000 + i), { model, ops: 500, workers: 5, crashRate: 0.05 })),
      { model },
    );
  }
}
for (const w of workloads) {
  const rnd = seededRandom(seed);
  const count = quick ? Math.max(1, Math.floor(w.histories / 10)) : w.histories;
  const times: number[] = [];
  const verdicts = new Map<string, number>();
  let ops = 0;
  let windowOps = 0;
  for (let i = 0; i < count; i++) {
    let events = simulateHistory(w.plan.model, randomPlan(rnd, w.plan));
    if (w.corrupt === true) events = corruptRead(events);
    const started = performance.now();
    const r: CheckResult = checkHistory(events, { model: w.plan.model, timeoutMs: 60_000 });
    times.push(performance.now() - started);
    ops += r.ops;
    windowOps += r.failure?.window.ops.length ?? 0;
    verdicts.set(String(r.linearizable), (verdicts.get(String(r.linearizable)) ?? 0) + 1);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const total = times.reduce((a, b) => a + b, 0);
  const verdictText = [...verdicts].map(([v, n]) => `${v}: ${n}`).join(', ');
  console.log(
    `${w.name}\n  ${count} histories, ${ops} ops, total ${total.toFixed(0)} ms; per history mean ${(total / count).toFixed(1)} ms, ` +
      `p50 ${quantile(sorted, 0.5).toFixed(1)} ms, p99 ${quantile(sorted, 0.99).toFixed(1)} ms, max ${(sorted[sorted.length - 1] ?? 0).toFixed(1)} ms; ` +
      `verdicts {${verdictText}}${w.corrupt === true ? `; mean failing window ${(windowOps / count).toFixed(1)} ops` : ''}`,
  );
}
