/**
 * History simulation for tests and benchmarks: plain sequential reference implementations of
 * the two models (written independently of the checker's Model code), and a simulator that
 * turns a plan of concurrent operations into a history that is linearizable by
 * construction: each operation takes effect at a point inside its [invoke, completion]
 * interval, operations are applied in point order, and events come out in time order.
 */
import { jsonEqual } from './canonical.js';
import type { HistoryEvent } from './history.js';
import type { ModelName } from './models/index.js';

/** A sequential reference implementation of one model, for a single key. */
export interface SequentialSpec {
  init(): unknown;
  /** Applies an operation; `ok: false` means it did not take effect (`next` is then the old state). */
  apply(state: unknown, f: string, value: unknown): { ok: boolean; next: unknown; output: unknown };
  /** Whether a recorded ok value agrees with the output computed here. */
  matches(f: string, computed: unknown, recorded: unknown): boolean;
}

export const registerSpec: SequentialSpec = {
  init: () => null,
  apply(state, f, value) {
    switch (f) {
      case 'read':
        return { ok: true, next: state, output: state };
      case 'write':
        return { ok: true, next: value, output: value };
      case 'cas': {
        const [expected, replacement] = value as [unknown, unknown];
        return jsonEqual(state, expected)
          ? { ok: true, next: replacement, output: value }
          : { ok: false, next: state, output: value };
      }
      default:
        throw new Error(`registerSpec: unknown operation ${f}`);
    }
  },
  matches: (f, computed, recorded) => f !== 'read' || jsonEqual(computed, recorded),
};

interface Instance {
  address: unknown;
  port: unknown;
  weight: unknown;
  metadata: unknown;
  version: number;
}

function fields(v: unknown): Omit<Instance, 'version'> {
  const i = v as Record<string, unknown>;
  return { address: i['address'], port: i['port'], weight: i['weight'], metadata: i['metadata'] };
}

export const registrySpec: SequentialSpec = {
  init: () => null,
  apply(state, f, value) {
    const s = state as Instance | null;
    switch (f) {
      case 'register': {
        // An identical write changes nothing and keeps the version, as the server does.
        const version = s === null ? 1 : jsonEqual(fields(s), fields(value)) ? s.version : s.version + 1;
        return { ok: true, next: { ...fields(value), version }, output: version };
      }
      case 'unregister':
        return { ok: true, next: null, output: s !== null };
      case 'get':
        return { ok: true, next: s, output: s === null ? null : { ...s } };
      case 'update': {
        const u = value as { expected: number; instance: unknown };
        if (s === null || s.version !== u.expected) return { ok: false, next: s, output: null };
        const version = jsonEqual(fields(s), fields(u.instance)) ? s.version : u.expected + 1;
        return { ok: true, next: { ...fields(u.instance), version }, output: version };
      }
      default:
        throw new Error(`registrySpec: unknown operation ${f}`);
    }
  },
  matches(f, computed, recorded) {
    if (f !== 'get') return recorded === null || recorded === undefined || recorded === computed;
    if (computed === null || recorded === null) return computed === recorded;
    const c = computed as Instance;
    const r = recorded as Instance;
    return jsonEqual(fields(c), fields(r)) && c.version === r.version;
  },
};

export function specFor(model: ModelName): SequentialSpec {
  return model === 'registry' ? registrySpec : registerSpec;
}

/** One planned operation of a simulated client ("worker"). Times are abstract integers. */
export interface PlannedOp {
  worker: number;
  f: string;
  key: string | null;
  value: unknown;
  /** Idle time before the invoke (>= 0). */
  gap: number;
  /** Invoke-to-completion time (>= 2). */
  latency: number;
  /** Where in the interval the operation takes effect, in [0, 1). */
  at: number;
  /** The client crashes: the completion becomes `info`, or is missing ("pending"). */
  crash?: 'info' | 'pending';
  /** For a crashed operation: whether it took effect anyway (possibly after the crash). */
  applied?: boolean;
  /** The server rejects the operation: it takes no effect and completes with `fail`. */
  rejected?: boolean;
}

/**
 * Simulates a plan. Each worker runs its operations one after another. After an `info` the
 * worker goes on as the same process; after a missing completion it continues as a new
 * process number. Returns the events in time order (with `time` in nanoseconds).
 */
export function simulateHistory(model: ModelName, plan: readonly PlannedOp[]): HistoryEvent[] {
  const spec = specFor(model);
  const clock = new Map<number, number>();
  const processOf = new Map<number, number>();
  let nextProcess = 1 + plan.reduce((m, op) => Math.max(m, op.worker), -1);
  interface Scheduled {
    op: PlannedOp;
    process: number;
    invoke: number;
    complete: number;
    point: number | null;
    outcome?: { ok: boolean; output: unknown };
  }
  const scheduled: Scheduled[] = [];
  for (const op of plan) {
    const process = processOf.get(op.worker) ?? op.worker;
    const invoke = (clock.get(op.worker) ?? 0) + Math.max(0, Math.floor(op.gap));
    const latency = Math.max(2, Math.floor(op.latency));
    const complete = invoke + latency;
    const at = Math.min(Math.max(op.at, 0), 0.999999);
    let point: number | null = invoke + 1 + Math.floor(at * (latency - 1));
    if (op.crash !== undefined) point = op.applied === true ? invoke + 1 + Math.floor(at * latency * 3) : null;
    if (op.rejected === true && op.crash === undefined) point = null;
    scheduled.push({ op, process, invoke, complete, point });
    clock.set(op.worker, complete);
    if (op.crash === 'pending') processOf.set(op.worker, nextProcess++);
  }

  const states = new Map<string | null, unknown>();
  const byPoint = scheduled
    .map((s, i) => ({ s, i }))
    .filter(({ s }) => s.point !== null)
    .sort((a, b) => (a.s.point as number) - (b.s.point as number) || a.i - b.i);
  for (const { s } of byPoint) {
    const state = states.has(s.op.key) ? states.get(s.op.key) : spec.init();
    const r = spec.apply(state, s.op.f, s.op.value);
    states.set(s.op.key, r.next);
    s.outcome = { ok: r.ok, output: r.output };
  }

  const timed: { time: number; seq: number; event: HistoryEvent }[] = [];
  let seq = 0;
  const base = (s: Scheduled): HistoryEvent => {
    const e: HistoryEvent = { process: s.process, type: 'invoke', f: s.op.f, value: s.op.value };
    if (s.op.key !== null) e.key = s.op.key;
    return e;
  };
  for (const s of scheduled) {
    timed.push({ time: s.invoke, seq: seq++, event: base(s) });
    if (s.op.crash === 'pending') continue;
    let completion: HistoryEvent;
    if (s.op.crash === 'info') completion = { ...base(s), type: 'info' };
    else if (s.outcome === undefined || !s.outcome.ok) completion = { ...base(s), type: 'fail' };
    else completion = { ...base(s), type: 'ok', value: s.outcome.output };
    timed.push({ time: s.complete, seq: seq++, event: completion });
  }
  timed.sort((a, b) => a.time - b.time || a.seq - b.seq);
  return timed.map(({ time, event }) => ({ ...event, time: time * 1000 }));
}

/** A small seeded PRNG (mulberry32) returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RandomPlanOptions {
  model: ModelName;
  ops: number;
  workers: number;
  /** Number of keys (default 1). */
  keys?: number;
  /** Probability that a client crashes during an operation (default 0.02). */
  crashRate?: number;
  /** Distinct register values written (default 5). */
  values?: number;
  /** Mean idle time between a worker's operations (default 20). */
  gap?: number;
  /** Mean invoke-to-completion time (default 80); latency / (gap + latency) of the workers
   *  are busy at any moment. */
  latency?: number;
}

const ADDRESSES = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];

function randomInstance(rnd: () => number): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  return {
    address: pick(ADDRESSES),
    port: pick([80, 8080]),
    weight: pick([1, 2]),
    metadata: pick([{}, { zone: 'a' }, { zone: 'b', tags: ['x'] }]),
  };
}

/** A random plan for benchmarks (tests build theirs with fast-check). */
export function randomPlan(rnd: () => number, o: RandomPlanOptions): PlannedOp[] {
  const plan: PlannedOp[] = [];
  const keys = o.keys ?? 1;
  const crashRate = o.crashRate ?? 0.02;
  const values = o.values ?? 5;
  const gap = o.gap ?? 20;
  const latency = o.latency ?? 80;
  for (let i = 0; i < o.ops; i++) {
    const worker = Math.floor(rnd() * o.workers);
    const key = o.model === 'registry' ? `ns/svc/i${Math.floor(rnd() * keys)}` : `k${Math.floor(rnd() * keys)}`;
    const r = rnd();
    let f: string;
    let value: unknown;
    if (o.model === 'register') {
      if (r < 0.5) [f, value] = ['read', null];
      else if (r < 0.8) [f, value] = ['write', Math.floor(rnd() * values)];
      else [f, value] = ['cas', [Math.floor(rnd() * values), Math.floor(rnd() * values)]];
    } else if (r < 0.4) [f, value] = ['get', null];
    else if (r < 0.65) [f, value] = ['register', randomInstance(rnd)];
    else if (r < 0.75) [f, value] = ['unregister', null];
    else [f, value] = ['update', { expected: 1 + Math.floor(rnd() * 3), instance: randomInstance(rnd) }];
    const op: PlannedOp = {
      worker,
      f,
      key,
      value,
      gap: Math.floor(rnd() * 2 * gap),
      latency: 2 + Math.floor(rnd() * 2 * latency),
      at: rnd(),
    };
    if (rnd() < crashRate) {
      op.crash = rnd() < 0.8 ? 'info' : 'pending';
      op.applied = rnd() < 0.5;
    }
    plan.push(op);
  }
  return plan;
}
