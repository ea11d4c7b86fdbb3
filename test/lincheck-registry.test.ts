import { describe, expect, it } from 'vitest';
import { checkHistory, type HistoryEvent, randomPlan, seededRandom, simulateHistory } from '../src/lincheck/index.js';

const A = { address: '10.0.0.1', port: 8080, weight: 1, metadata: { zone: 'a' } };
const B = { address: '10.0.0.2', port: 8080, weight: 2, metadata: {} };
const KEY = 'prod/payments/i-1';

type Step = [process: number, type: HistoryEvent['type'], f: string, value?: unknown, key?: string];
const h = (...steps: Step[]): HistoryEvent[] =>
  steps.map(([process, type, f, value = null, key = KEY]) => ({ process, type, f, key, value }));
const lin = (events: HistoryEvent[]): boolean | 'unknown' => checkHistory(events, { model: 'registry' }).linearizable;

/** A completed operation by process 0. */
const op = (f: string, input: unknown, output: unknown, key = KEY): Step[] => [
  [0, 'invoke', f, input, key],
  [0, 'ok', f, output, key],
];

describe('registry model: hand-written histories', () => {
  it('register, re-register, update, unregister, re-create: versions as specified', () => {
    const events = h(
      ...op('get', null, null),
      ...op('register', A, 1),
      ...op('get', null, { ...A, version: 1 }),
      ...op('register', B, 2),
      ...op('get', null, { ...B, version: 2 }),
      ...op('update', { expected: 2, instance: A }, 3),
      ...op('get', null, { ...A, version: 3 }),
      ...op('unregister', null, true),
      ...op('get', null, null),
      ...op('unregister', null, false),
      ...op('register', B, 1),
      ...op('get', null, { ...B, version: 1 }),
    );
    expect(checkHistory(events, { model: 'registry' })).toMatchObject({
      linearizable: true,
      model: 'registry',
      ops: 12,
      keys: 1,
    });
  });

  it('a register or update that leaves every field as it was keeps the version, as the server does', () => {
    const events = h(
      ...op('register', A, 1),
      ...op('register', A, 1),
      ...op('get', null, { ...A, version: 1 }),
      ...op('update', { expected: 1, instance: A }, 1),
      ...op('register', B, 2),
      ...op('get', null, { ...B, version: 2 }),
    );
    expect(lin(events)).toBe(true);
    expect(lin(h(...op('register', A, 1), ...op('register', A, 2)))).toBe(false);
    expect(lin(h(...op('register', A, 1), ...op('update', { expected: 1, instance: A }, 2)))).toBe(false);
  });

  it('outputs may be unreported (null)', () => {
    expect(lin(h(...op('register', A, null), ...op('unregister', null, null), ...op('get', null, null)))).toBe(true);
  });

  it('a failed update changed nothing', () => {
    const events = h(
      ...op('register', A, 1),
      [1, 'invoke', 'update', { expected: 5, instance: B }],
      [1, 'fail', 'update', { expected: 5, instance: B }],
      ...op('get', null, { ...A, version: 1 }),
    );
    expect(lin(events)).toBe(true);
  });

  it('get compares only address, port, weight, metadata and version, deeply', () => {
    const read = {
      version: 1,
      metadata: { zone: 'a' },
      weight: 1,
      port: 8080,
      address: '10.0.0.1',
      healthy: true,
      tags: ['x'],
    };
    expect(lin(h(...op('register', A, 1), ...op('get', null, read)))).toBe(true);
    expect(lin(h(...op('register', A, 1), ...op('get', null, { ...A, metadata: { zone: 'b' }, version: 1 })))).toBe(
      false,
    );
    expect(lin(h(...op('register', A, 1), ...op('get', null, { ...A, port: 80, version: 1 })))).toBe(false);
  });

  it('rejects a stale get', () => {
    const r = checkHistory(
      h(...op('register', A, 1), ...op('register', B, 2), ...op('get', null, { ...A, version: 1 })),
      {
        model: 'registry',
      },
    );
    expect(r.linearizable).toBe(false);
    expect(r.failure).toMatchObject({ key: KEY, stuck: { f: 'get', invokeIndex: 4 } });
    expect(r.failure?.window.ops.map((o) => o.f)).toEqual(['register', 'get']);
  });

  it('rejects wrong versions', () => {
    expect(lin(h(...op('register', A, 2)))).toBe(false);
    expect(lin(h(...op('register', A, 1), ...op('register', B, 1)))).toBe(false);
    expect(lin(h(...op('register', A, 1), ...op('update', { expected: 1, instance: B }, 3)))).toBe(false);
    expect(lin(h(...op('register', A, 1), ...op('unregister', null, true), ...op('register', A, 2)))).toBe(false);
  });

  it('rejects an update that succeeded against the wrong version, or against nothing', () => {
    expect(lin(h(...op('register', A, 1), ...op('update', { expected: 2, instance: B }, 3)))).toBe(false);
    expect(lin(h(...op('update', { expected: 1, instance: B }, 2)))).toBe(false);
  });

  it('rejects an unregister that misreports existence', () => {
    expect(lin(h(...op('unregister', null, true)))).toBe(false);
    expect(lin(h(...op('register', A, 1), ...op('unregister', null, false)))).toBe(false);
  });

  it('concurrent registers: either order, but versions must agree with it', () => {
    const both = (va: number, vb: number, read: unknown): HistoryEvent[] =>
      h(
        [0, 'invoke', 'register', A],
        [1, 'invoke', 'register', B],
        [0, 'ok', 'register', va],
        [1, 'ok', 'register', vb],
        [2, 'invoke', 'get'],
        [2, 'ok', 'get', read],
      );
    expect(lin(both(1, 2, { ...B, version: 2 }))).toBe(true);
    expect(lin(both(2, 1, { ...A, version: 2 }))).toBe(true);
    expect(lin(both(1, 2, { ...A, version: 2 }))).toBe(false);
    expect(lin(both(1, 1, { ...A, version: 1 }))).toBe(false);
  });

  it('an update with unknown outcome may or may not have happened', () => {
    const base: Step[] = [
      ...op('register', A, 1),
      [1, 'invoke', 'update', { expected: 1, instance: B }],
      [1, 'info', 'update'],
    ];
    expect(lin(h(...base, ...op('get', null, { ...B, version: 2 })))).toBe(true);
    expect(lin(h(...base, ...op('get', null, { ...A, version: 1 })))).toBe(true);
    expect(lin(h(...base, ...op('get', null, { ...B, version: 3 })))).toBe(false);
  });

  it('instances are independent', () => {
    const events = h(
      ...op('register', A, 1, 'ns/a/1'),
      ...op('register', B, 1, 'ns/a/2'),
      ...op('get', null, { ...A, version: 1 }, 'ns/a/1'),
    );
    expect(checkHistory(events, { model: 'registry' })).toMatchObject({ linearizable: true, keys: 2 });
  });

  it('generated histories with crashes are linearizable; corrupting one get is caught', () => {
    const rnd = seededRandom(11);
    for (let i = 0; i < 20; i++) {
      const events = simulateHistory(
        'registry',
        randomPlan(rnd, { model: 'registry', ops: 300, workers: 6, keys: 3, crashRate: 0.05 }),
      );
      expect(lin(events)).toBe(true);
      // Bump the version of the last get that saw an instance.
      const gets = events.filter((e) => e.type === 'ok' && e.f === 'get' && e.value !== null);
      const last = gets[gets.length - 1];
      if (last === undefined) continue;
      const corrupted = events.map((e) =>
        e === last
          ? { ...e, value: { ...(e.value as object), version: (e.value as { version: number }).version + 7 } }
          : e,
      );
      const r = checkHistory(corrupted, { model: 'registry' });
      expect(r.linearizable).toBe(false);
      expect(r.failure?.stuck.returnIndex).toBe(events.indexOf(last));
    }
  });
});
