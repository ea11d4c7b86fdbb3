/**
 * Property tests for the linearizability checker (fast-check with a fixed seed: set SEED to
 * explore others; a failure prints the seed and path to replay it).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bruteForceLinearizable,
  checkHistory,
  type HistoryEvent,
  type ModelName,
  type PlannedOp,
  registerSpec,
  registrySpec,
  simulateHistory,
} from '../src/lincheck/index.js';

const SEED = Number(process.env['SEED'] ?? 42);
const params = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns });

interface Call {
  f: string;
  value: unknown;
}

const registerCall = (values: number): fc.Arbitrary<Call> => {
  const v = fc.integer({ min: 0, max: values - 1 });
  return fc.oneof(
    { arbitrary: fc.constant<Call>({ f: 'read', value: null }), weight: 4 },
    { arbitrary: v.map<Call>((x) => ({ f: 'write', value: x })), weight: 3 },
    {
      arbitrary: fc.tuple(fc.option(v, { freq: 4 }), v).map<Call>(([a, b]) => ({ f: 'cas', value: [a, b] })),
      weight: 2,
    },
  );
};

const instanceArb = fc.record({
  address: fc.constantFrom('10.0.0.1', '10.0.0.2'),
  port: fc.constantFrom(80, 8080),
  weight: fc.constantFrom(1, 2),
  metadata: fc.constantFrom({}, { zone: 'a' }),
});

const registryCall: fc.Arbitrary<Call> = fc.oneof(
  { arbitrary: fc.constant<Call>({ f: 'get', value: null }), weight: 4 },
  { arbitrary: instanceArb.map<Call>((i) => ({ f: 'register', value: i })), weight: 3 },
  { arbitrary: fc.constant<Call>({ f: 'unregister', value: null }), weight: 1 },
  {
    arbitrary: fc
      .record({ expected: fc.integer({ min: 1, max: 3 }), instance: instanceArb })
      .map<Call>((value) => ({ f: 'update', value })),
    weight: 2,
  },
);

interface PlanShape {
  workers: number;
  keys: readonly string[];
  minOps?: number;
  maxOps: number;
  /** Relative weight of crashed operations (out of 20). */
  crashes: number;
}

function planArb(call: fc.Arbitrary<Call>, s: PlanShape): fc.Arbitrary<PlannedOp[]> {
  const step = fc.record({
    worker: fc.integer({ min: 0, max: s.workers - 1 }),
    key: fc.constantFrom(...s.keys),
    call,
    gap: fc.integer({ min: 0, max: 10 }),
    latency: fc.integer({ min: 2, max: 40 }),
    at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    crash: fc.oneof(
      { arbitrary: fc.constant<'none'>('none'), weight: 20 - s.crashes },
      { arbitrary: fc.constantFrom<'info' | 'pending'>('info', 'pending'), weight: s.crashes },
    ),
    applied: fc.boolean(),
    rejected: fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, { arbitrary: fc.constant(true), weight: 1 }),
  });
  return fc.array(step, { minLength: s.minOps ?? 0, maxLength: s.maxOps }).map((steps) =>
    steps.map((x) => {
      const op: PlannedOp = {
        worker: x.worker,
        f: x.call.f,
        key: x.key,
        value: x.call.value,
        gap: x.gap,
        latency: x.latency,
        at: x.at,
      };
      if (x.crash !== 'none') {
        op.crash = x.crash;
        op.applied = x.applied;
      } else if (x.rejected) {
        op.rejected = true;
      }
      return op;
    }),
  );
}

const shapeArb = (maxWorkers: number, keys: readonly string[], maxOps: number): fc.Arbitrary<PlanShape> =>
  fc.record({
    workers: fc.integer({ min: 1, max: maxWorkers }),
    keys: fc.integer({ min: 1, max: keys.length }).map((k) => keys.slice(0, k)),
    minOps: fc.integer({ min: 0, max: maxOps }),
    maxOps: fc.constant(maxOps),
    crashes: fc.integer({ min: 0, max: 6 }),
  });

const simulated = (
  model: ModelName,
  call: fc.Arbitrary<Call>,
  maxWorkers: number,
  keys: readonly string[],
  maxOps: number,
) =>
  shapeArb(maxWorkers, keys, maxOps).chain((shape) => planArb(call, shape).map((plan) => simulateHistory(model, plan)));

/** A change to one completion: its value, or its type. */
interface Mutation {
  pick: number;
  kind: 'value' | 'type';
  read: unknown;
  version: number | null;
  existed: boolean;
  instance: unknown;
  type: 'ok' | 'fail' | 'info';
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  pick: fc.nat(),
  kind: fc.oneof(
    { arbitrary: fc.constant<'value'>('value'), weight: 3 },
    { arbitrary: fc.constant<'type'>('type'), weight: 1 },
  ),
  // 3 is never written by the register histories below.
  read: fc.constantFrom(null, 0, 1, 2, 3),
  version: fc.option(fc.integer({ min: 1, max: 4 }), { freq: 4 }),
  existed: fc.boolean(),
  instance: fc.option(
    fc.tuple(instanceArb, fc.integer({ min: 1, max: 4 })).map(([i, version]) => ({ ...i, version })),
    { freq: 3 },
  ),
  type: fc.constantFrom('ok', 'fail', 'info'),
});

function mutate(events: readonly HistoryEvent[], m: Mutation, onlyReads: boolean): HistoryEvent[] {
  const out = events.map((e) => ({ ...e }));
  const targets = out.filter((e) => e.type !== 'invoke' && (!onlyReads || (e.type === 'ok' && e.f === 'read')));
  const e = targets[m.pick % Math.max(1, targets.length)];
  if (e === undefined) return out;
  if (onlyReads || m.kind === 'value') {
    if (e.f === 'read') e.value = m.read;
    else if (e.f === 'register' || e.f === 'update') e.value = m.version;
    else if (e.f === 'unregister') e.value = m.existed;
    else if (e.f === 'get') e.value = m.instance;
    else if (e.f === 'write') e.value = m.read;
  } else {
    e.type = m.type;
    if (m.type === 'ok') {
      if (e.f === 'read') e.value = m.read;
      if (e.f === 'get') e.value = m.instance;
      if (e.f === 'register' || e.f === 'update') e.value = m.version;
      if (e.f === 'unregister') e.value = m.existed;
    }
  }
  return out;
}

describe('property: simulated histories are linearizable', () => {
  it('register: up to 8 processes, 3 keys, crashes, info and fail', () => {
    fc.assert(
      fc.property(simulated('register', registerCall(4), 8, ['a', 'b', 'c'], 80), (events) => {
        const r = checkHistory(events, { model: 'register' });
        expect(r.failure?.message).toBeUndefined();
        expect(r.linearizable).toBe(true);
      }),
      params(200),
    );
  });

  it('register: 10-30 processes on one key', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 10, max: 30 })
          .chain((workers) =>
            planArb(registerCall(3), { workers, keys: ['k'], minOps: 150, maxOps: 300, crashes: 1 }).map((p) =>
              simulateHistory('register', p),
            ),
          ),
        (events) => {
          expect(checkHistory(events).linearizable).toBe(true);
        },
      ),
      params(25),
    );
  });

  it('registry: up to 8 processes, 3 instances', () => {
    fc.assert(
      fc.property(simulated('registry', registryCall, 8, ['ns/svc/1', 'ns/svc/2', 'ns/other/1'], 80), (events) => {
        const r = checkHistory(events, { model: 'registry' });
        expect(r.failure?.message).toBeUndefined();
        expect(r.linearizable).toBe(true);
      }),
      params(200),
    );
  });
});

describe('property: the checker agrees with a brute-force oracle on small histories', () => {
  it('register: one ok read changed (or not)', () => {
    const seen = { true: 0, false: 0 };
    fc.assert(
      fc.property(
        simulated('register', registerCall(3), 4, ['k'], 7),
        fc.option(mutationArb, { freq: 4 }),
        (events, m) => {
          const history = m === null ? events : mutate(events, m, true);
          const expected = bruteForceLinearizable(history, registerSpec);
          seen[String(expected) as 'true' | 'false']++;
          expect(checkHistory(history).linearizable).toBe(expected);
        },
      ),
      params(2000),
    );
    expect(seen.false).toBeGreaterThan(100);
    expect(seen.true).toBeGreaterThan(100);
  });

  it('register: arbitrary completions changed (values and ok/fail/info)', () => {
    fc.assert(
      fc.property(
        simulated('register', registerCall(3), 4, ['k', 'j'], 7),
        fc.array(mutationArb, { maxLength: 3 }),
        (events, ms) => {
          const history = ms.reduce((h, m) => mutate(h, m, false), events);
          expect(checkHistory(history).linearizable).toBe(bruteForceLinearizable(history, registerSpec));
        },
      ),
      params(2000),
    );
  });

  it('registry: arbitrary completions changed', () => {
    const seen = { true: 0, false: 0 };
    fc.assert(
      fc.property(
        simulated('registry', registryCall, 4, ['ns/s/1'], 7),
        fc.array(mutationArb, { maxLength: 2 }),
        (events, ms) => {
          const history = ms.reduce((h, m) => mutate(h, m, false), events);
          const expected = bruteForceLinearizable(history, registrySpec);
          seen[String(expected) as 'true' | 'false']++;
          expect(checkHistory(history, { model: 'registry' }).linearizable).toBe(expected);
        },
      ),
      params(2000),
    );
    expect(seen.false).toBeGreaterThan(100);
    expect(seen.true).toBeGreaterThan(100);
  });
});

/** Indices of the invoke and completion events of operations that failed. */
function failedEvents(events: readonly HistoryEvent[]): Set<number> {
  const failed = new Set<number>();
  const open = new Map<unknown, number>();
  events.forEach((e, i) => {
    if (e.type === 'invoke') open.set(e.process, i);
    else if (e.type === 'fail') failed.add(open.get(e.process) as number).add(i);
  });
  return failed;
}

/** The history before event index `end`, without failed operations (they did not happen,
 *  even if the fail comes later). */
function prefixBefore(events: readonly HistoryEvent[], end: number): HistoryEvent[] {
  const failed = failedEvents(events);
  return events.filter((_, i) => i < end && !failed.has(i));
}

/** The values a register could hold when the window opens (mirrors model.reachableStates). */
function startValues(events: readonly HistoryEvent[], fromIndex: number): unknown[] {
  const failed = failedEvents(events);
  const values: unknown[] = [null];
  events.forEach((e, i) => {
    if (e.type !== 'invoke' || i >= fromIndex || failed.has(i)) return;
    if (e.f === 'write') values.push(e.value);
    if (e.f === 'cas') values.push((e.value as unknown[])[1]);
  });
  return values;
}

describe('property: failure reports are genuine and minimal-prefix', () => {
  it('register: the prefix before the stuck completion linearizes, through it does not, and the window fails from every start', () => {
    let failures = 0;
    fc.assert(
      fc.property(
        simulated('register', registerCall(3), 4, ['k'], 7),
        fc.array(mutationArb, { minLength: 1, maxLength: 2 }),
        (events, ms) => {
          const history = ms.reduce((h, m) => mutate(h, m, false), events);
          const r = checkHistory(history);
          if (r.linearizable !== false) return;
          failures++;
          const f = r.failure;
          if (f === undefined) throw new Error('a "false" verdict must come with a failure report');
          expect(f.minimal).toBe(true);
          expect(f.prefixLinearizes).toBe(true);
          const stuckAt = f.stuck.returnIndex as number;
          expect(bruteForceLinearizable(prefixBefore(history, stuckAt), registerSpec)).toBe(true);
          expect(bruteForceLinearizable(prefixBefore(history, stuckAt + 1), registerSpec)).toBe(false);
          // The window alone, from any state the register could be in when it opens.
          expect(f.window.toIndex).toBe(stuckAt);
          expect(f.window.ops.some((o) => o.invokeIndex === f.stuck.invokeIndex)).toBe(true);
          const windowEvents: [number, HistoryEvent][] = [];
          for (const o of f.window.ops) {
            const base = { process: o.process, f: o.f, key: 'k', value: o.value };
            windowEvents.push([o.invokeIndex, { ...base, type: 'invoke' }]);
            if (o.type === 'ok' && o.outcomeIgnored !== true)
              windowEvents.push([o.returnIndex as number, { ...base, type: 'ok', value: o.output }]);
          }
          windowEvents.sort((a, b) => a[0] - b[0]);
          for (const start of startValues(history, f.window.fromIndex)) {
            const prelude: HistoryEvent[] = [
              { process: 'start', type: 'invoke', f: 'write', key: 'k', value: start },
              { process: 'start', type: 'ok', f: 'write', key: 'k', value: start },
            ];
            expect(bruteForceLinearizable([...prelude, ...windowEvents.map(([, e]) => e)], registerSpec)).toBe(false);
          }
        },
      ),
      params(1000),
    );
    expect(failures).toBeGreaterThan(100);
  });
});
