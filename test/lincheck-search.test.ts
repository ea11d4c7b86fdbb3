import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkHistory,
  createRegisterModel,
  type HistoryEvent,
  type HistoryOp,
  type Model,
  pairOperations,
  randomPlan,
  runCli,
  type SearchOp,
  searchLinearization,
  seededRandom,
  simulateHistory,
} from '../src/lincheck/index.js';

const SEED = Number(process.env['SEED'] ?? 42);

/** The register model's search ops for a history (all keys in one). */
function searchOps(events: HistoryEvent[]): { model: ReturnType<typeof createRegisterModel>; ops: SearchOp[] } {
  const model = createRegisterModel();
  const ops: SearchOp[] = [];
  for (const op of pairOperations(events)) {
    if (op.outcome === 'fail') continue;
    const known = op.outcome === 'ok';
    const d = model.decode(op, known);
    if (d !== null) ops.push({ ...d, call: op.invokeIndex, ret: known ? (op.returnIndex as number) : Infinity });
  }
  return { model, ops };
}

describe('searchLinearization', () => {
  it('returns a linearization that respects real time and the model', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 12 }), (seed, workers) => {
        const events = simulateHistory(
          'register',
          randomPlan(seededRandom(seed), { model: 'register', ops: 120, workers, crashRate: 0.1, values: 3 }),
        );
        const { model, ops } = searchOps(events);
        const r = searchLinearization(model, ops);
        expect(r.verdict).toBe('linearizable');
        // Every operation with a known outcome appears once; unknown ones only if they took effect.
        const order = r.order ?? [];
        expect(new Set(order).size).toBe(order.length);
        expect(ops.filter((op, i) => op.ret !== Infinity && !order.includes(i))).toEqual([]);
        const at = new Map(order.map((op, i) => [op, i]));
        const violations: [number, number][] = [];
        for (const [i, a] of ops.entries()) {
          for (const [j, b] of ops.entries()) {
            if (a.ret < b.call && at.has(j) && (at.get(i) ?? Infinity) > (at.get(j) as number)) violations.push([i, j]);
          }
        }
        expect(violations).toEqual([]);
        let state = model.init();
        for (const i of order) {
          const op = ops[i] as SearchOp;
          const step = model.step(state, op.input as never, op.output as never);
          expect(step.ok).toBe(true);
          if (step.ok) state = step.next;
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('tries every start state it is given', () => {
    const events: HistoryEvent[] = [
      { process: 0, type: 'invoke', f: 'read', key: 'k' },
      { process: 0, type: 'ok', f: 'read', key: 'k', value: 'x' },
    ];
    const { model, ops } = searchOps(events);
    expect(searchLinearization(model, ops).verdict).toBe('not-linearizable');
    const x = model.decode({ f: 'write', input: 'x' } as HistoryOp, true)?.input as { value: number };
    expect(searchLinearization(model, ops, { initialStates: [model.init(), x.value] }).verdict).toBe('linearizable');
  });

  it('stops with "budget" when out of steps, and reports how far it got', () => {
    const events = simulateHistory(
      'register',
      randomPlan(seededRandom(5), { model: 'register', ops: 2000, workers: 10 }),
    );
    const { model, ops } = searchOps(events);
    const r = searchLinearization(model, ops, { maxSteps: 2000 });
    expect(r.verdict).toBe('budget');
    expect(r.frontier).toBeGreaterThan(0);
  });

  it('an empty history is linearizable', () => {
    expect(searchLinearization(createRegisterModel(), []).verdict).toBe('linearizable');
  });
});

describe('custom models through the generic Model interface', () => {
  // A counter per key: add(n) returns nothing, read returns the total.
  type Input = { f: 'add'; n: number } | { f: 'read' };
  const counter: Model<number, Input, number | null> = {
    name: 'counter',
    init: () => 0,
    step: (s, input, output) =>
      input.f === 'add'
        ? { ok: true, next: s + input.n }
        : output === null || output === s
          ? { ok: true, next: s }
          : { ok: false },
    equal: (a, b) => a === b,
    hash: (s) => s | 0,
    partition: (op) => String(op.key),
    validate: (e) => (e.f === 'add' || e.f === 'read' ? undefined : `counter has no "${e.f}"`),
    decode: (op, known) =>
      op.f === 'add'
        ? { input: { f: 'add', n: op.input as number }, output: null }
        : known
          ? { input: { f: 'read' }, output: op.output as number }
          : null,
    readOnly: (input) => input.f === 'read',
  };
  const h = (reads: number[]): HistoryEvent[] => [
    { process: 0, type: 'invoke', f: 'add', key: 'c', value: 2 },
    { process: 1, type: 'invoke', f: 'add', key: 'c', value: 3 },
    ...reads.flatMap((v): HistoryEvent[] => [
      { process: 2, type: 'invoke', f: 'read', key: 'c' },
      { process: 2, type: 'ok', f: 'read', key: 'c', value: v },
    ]),
    { process: 0, type: 'ok', f: 'add', key: 'c' },
    { process: 1, type: 'ok', f: 'add', key: 'c' },
  ];

  it('checks and explains with a model supplied by the caller', () => {
    expect(checkHistory(h([0, 3, 5]), { model: counter })).toMatchObject({ linearizable: true, model: 'counter' });
    const r = checkHistory(h([2, 3]), { model: counter });
    expect(r.linearizable).toBe(false);
    expect(r.failure?.stuck).toMatchObject({ f: 'read', output: 3 });
    // Without reachableStates the window is never cut on the left.
    expect(r.failure?.window).toMatchObject({ fromIndex: 0, startStates: 1 });
    expect(() =>
      checkHistory([{ process: 0, type: 'invoke', f: 'mul', key: 'c', value: 2 }], { model: counter }),
    ).toThrow(/line 1: counter has no "mul"/);
  });
});

describe('CLI exit code 3', () => {
  it('reports "unknown" when --timeout-ms runs out', () => {
    const events = simulateHistory(
      'register',
      randomPlan(seededRandom(3), { model: 'register', ops: 3000, workers: 10 }),
    );
    const text = events.map((e) => JSON.stringify(e)).join('\n');
    const { exitCode, line } = runCli(['h.jsonl', '--timeout-ms', '0.000001'], () => text);
    expect(exitCode).toBe(3);
    expect(JSON.parse(line)).toMatchObject({ linearizable: 'unknown', ops: 3000 });
  });
});
