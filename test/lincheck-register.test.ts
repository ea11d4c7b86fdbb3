import { describe, expect, it } from 'vitest';
import {
  checkHistory,
  type EventType,
  type HistoryEvent,
  randomPlan,
  seededRandom,
  simulateHistory,
} from '../src/lincheck/index.js';

/** Compact events: [process, type, f, value?, key?] (key defaults to "k"). */
type E = [number, EventType, string, unknown?, string?];
const h = (...events: E[]): HistoryEvent[] =>
  events.map(([process, type, f, value = null, key = 'k']) => ({ process, type, f, key, value }));

const lin = (events: HistoryEvent[]): boolean | 'unknown' => checkHistory(events).linearizable;

describe('register model: hand-written histories', () => {
  it('an empty history is linearizable', () => {
    expect(checkHistory([])).toMatchObject({ linearizable: true, ops: 0, keys: 0, model: 'register' });
  });

  it('a sequential write then read', () => {
    const r = checkHistory(
      h([0, 'invoke', 'write', 1], [0, 'ok', 'write', 1], [1, 'invoke', 'read'], [1, 'ok', 'read', 1]),
    );
    expect(r).toMatchObject({ linearizable: true, ops: 2, keys: 1 });
    expect(r.failure).toBeUndefined();
    expect(r.elapsedMs).toBeGreaterThanOrEqual(0);
  });

  it('the register starts at null', () => {
    expect(lin(h([0, 'invoke', 'read'], [0, 'ok', 'read', null]))).toBe(true);
    expect(lin(h([0, 'invoke', 'read'], [0, 'ok', 'read', 0]))).toBe(false);
  });

  it('rejects a read of a value never written', () => {
    const r = checkHistory(
      h(
        [0, 'invoke', 'write', 1],
        [0, 'ok', 'write', 1],
        [1, 'invoke', 'read'],
        [1, 'ok', 'read', 7],
        [0, 'invoke', 'write', 2],
        [0, 'ok', 'write', 2],
      ),
    );
    expect(r.linearizable).toBe(false);
    expect(r.failure).toMatchObject({
      key: 'k',
      stuck: { f: 'read', output: 7, invokeIndex: 2, returnIndex: 3 },
      prefixLinearizes: true,
    });
    // The read alone fails, whatever state the register was in.
    expect(r.failure?.window.ops.map((o) => o.f)).toEqual(['read']);
    expect(r.failure?.window.startStates).toBe(2);
  });

  it('rejects a stale read and points at the two operations involved', () => {
    const r = checkHistory(
      h(
        [0, 'invoke', 'write', 1],
        [0, 'ok', 'write', 1],
        [0, 'invoke', 'write', 2],
        [0, 'ok', 'write', 2],
        [1, 'invoke', 'read'],
        [1, 'ok', 'read', 1],
      ),
    );
    expect(r.linearizable).toBe(false);
    const f = r.failure;
    expect(f?.stuck).toMatchObject({
      process: 1,
      f: 'read',
      value: null,
      output: 1,
      type: 'ok',
      invokeIndex: 4,
      returnIndex: 5,
      invokeLine: 5,
      returnLine: 6,
    });
    expect(f?.prefixLinearizes).toBe(true);
    expect(f?.prefixOps).toBe(2);
    expect(f?.window).toMatchObject({ fromIndex: 2, toIndex: 5, fromLine: 3, toLine: 6 });
    expect(f?.window.ops.map((o) => [o.f, o.value, o.output])).toEqual([
      ['write', 2, 2],
      ['read', null, 1],
    ]);
    expect(f?.minimal).toBe(true);
    expect(f?.message).toMatch(/key "k": no linearization allows read -> 1 by process 1/);
  });

  it('accepts concurrent writes seen in either order', () => {
    // Two overlapping writes; one reader sees 1 then 2, which fixes the order 1, 2.
    const events = h(
      [0, 'invoke', 'write', 1],
      [1, 'invoke', 'write', 2],
      [2, 'invoke', 'read'],
      [2, 'ok', 'read', 1],
      [2, 'invoke', 'read'],
      [2, 'ok', 'read', 2],
      [0, 'ok', 'write', 1],
      [1, 'ok', 'write', 2],
    );
    expect(lin(events)).toBe(true);
  });

  it('rejects readers that disagree on the order of two writes', () => {
    const events = h(
      [0, 'invoke', 'write', 1],
      [1, 'invoke', 'write', 2],
      [0, 'ok', 'write', 1],
      [1, 'ok', 'write', 2],
      [2, 'invoke', 'read'],
      [2, 'ok', 'read', 1],
      [3, 'invoke', 'read'],
      [3, 'ok', 'read', 2],
    );
    expect(lin(events)).toBe(false);
  });

  it('a read concurrent with a write may see the old or the new value, but not flip back', () => {
    const base: E[] = [
      [0, 'invoke', 'write', 1],
      [0, 'ok', 'write', 1],
      [0, 'invoke', 'write', 2],
    ];
    expect(lin(h(...base, [1, 'invoke', 'read'], [1, 'ok', 'read', 1], [0, 'ok', 'write', 2]))).toBe(true);
    expect(lin(h(...base, [1, 'invoke', 'read'], [1, 'ok', 'read', 2], [0, 'ok', 'write', 2]))).toBe(true);
    expect(
      lin(
        h(
          ...base,
          [1, 'invoke', 'read'],
          [1, 'ok', 'read', 2],
          [1, 'invoke', 'read'],
          [1, 'ok', 'read', 1],
          [0, 'ok', 'write', 2],
        ),
      ),
    ).toBe(false);
  });

  it('an info write may take effect late, or never', () => {
    const crashed: E[] = [
      [0, 'invoke', 'write', 1],
      [0, 'ok', 'write', 1],
      [0, 'invoke', 'write', 2],
      [0, 'info', 'write', 2],
    ];
    // Seen much later: fine.
    expect(
      lin(h(...crashed, [1, 'invoke', 'read'], [1, 'ok', 'read', 1], [1, 'invoke', 'read'], [1, 'ok', 'read', 2])),
    ).toBe(true);
    // Never seen: fine.
    expect(lin(h(...crashed, [1, 'invoke', 'read'], [1, 'ok', 'read', 1]))).toBe(true);
    // Seen, then unseen: no.
    expect(
      lin(h(...crashed, [1, 'invoke', 'read'], [1, 'ok', 'read', 2], [1, 'invoke', 'read'], [1, 'ok', 'read', 1])),
    ).toBe(false);
    // Seen before it was invoked: no.
    expect(
      lin(h([1, 'invoke', 'read'], [1, 'ok', 'read', 2], [0, 'invoke', 'write', 2], [0, 'info', 'write', 2])),
    ).toBe(false);
  });

  it('a missing completion is treated like info', () => {
    expect(lin(h([0, 'invoke', 'write', 5], [1, 'invoke', 'read'], [1, 'ok', 'read', 5]))).toBe(true);
    expect(lin(h([0, 'invoke', 'write', 5], [1, 'invoke', 'read'], [1, 'ok', 'read', 6]))).toBe(false);
  });

  it('the same process may invoke again after an info', () => {
    const events = h(
      [0, 'invoke', 'write', 1],
      [0, 'info', 'write', 1],
      [0, 'invoke', 'write', 2],
      [0, 'ok', 'write', 2],
      [1, 'invoke', 'read'],
      [1, 'ok', 'read', 1],
    );
    expect(lin(events)).toBe(true); // the crashed write landed after the second one
  });

  it('info reads constrain nothing', () => {
    expect(lin(h([0, 'invoke', 'read'], [0, 'info', 'read', 99]))).toBe(true);
  });

  it('a failed write did not happen', () => {
    expect(
      lin(h([0, 'invoke', 'write', 1], [0, 'fail', 'write', 1], [1, 'invoke', 'read'], [1, 'ok', 'read', null])),
    ).toBe(true);
    expect(
      lin(h([0, 'invoke', 'write', 1], [0, 'fail', 'write', 1], [1, 'invoke', 'read'], [1, 'ok', 'read', 1])),
    ).toBe(false);
  });

  it('cas: ok takes effect, fail does not', () => {
    const w: E[] = [
      [0, 'invoke', 'write', 1],
      [0, 'ok', 'write', 1],
    ];
    expect(
      lin(h(...w, [1, 'invoke', 'cas', [1, 2]], [1, 'ok', 'cas', [1, 2]], [2, 'invoke', 'read'], [2, 'ok', 'read', 2])),
    ).toBe(true);
    expect(
      lin(h(...w, [1, 'invoke', 'cas', [1, 2]], [1, 'ok', 'cas', [1, 2]], [2, 'invoke', 'read'], [2, 'ok', 'read', 1])),
    ).toBe(false);
    // An ok cas whose expected value was not there.
    expect(lin(h(...w, [1, 'invoke', 'cas', [3, 4]], [1, 'ok', 'cas', [3, 4]]))).toBe(false);
    // A failed cas changes nothing, even if the comparison "should" have held.
    expect(
      lin(
        h(...w, [1, 'invoke', 'cas', [1, 2]], [1, 'fail', 'cas', [1, 2]], [2, 'invoke', 'read'], [2, 'ok', 'read', 1]),
      ),
    ).toBe(true);
    expect(
      lin(
        h(...w, [1, 'invoke', 'cas', [1, 2]], [1, 'fail', 'cas', [1, 2]], [2, 'invoke', 'read'], [2, 'ok', 'read', 2]),
      ),
    ).toBe(false);
  });

  it('cas with an unknown outcome may or may not have taken effect', () => {
    const w: E[] = [
      [0, 'invoke', 'write', 1],
      [0, 'ok', 'write', 1],
      [1, 'invoke', 'cas', [1, 2]],
      [1, 'info', 'cas', [1, 2]],
    ];
    expect(lin(h(...w, [2, 'invoke', 'read'], [2, 'ok', 'read', 2]))).toBe(true);
    expect(lin(h(...w, [2, 'invoke', 'read'], [2, 'ok', 'read', 1]))).toBe(true);
    // It can only take effect while the register holds 1.
    expect(
      lin(
        h(
          ...w,
          [0, 'invoke', 'write', 3],
          [0, 'ok', 'write', 3],
          [2, 'invoke', 'read'],
          [2, 'ok', 'read', 3],
          [2, 'invoke', 'read'],
          [2, 'ok', 'read', 2],
        ),
      ),
    ).toBe(false);
  });

  it('a chain of cas operations', () => {
    const events = h(
      [0, 'invoke', 'cas', [null, 'a']],
      [1, 'invoke', 'cas', ['a', 'b']],
      [2, 'invoke', 'cas', ['b', 'c']],
      [2, 'ok', 'cas', ['b', 'c']],
      [1, 'ok', 'cas', ['a', 'b']],
      [0, 'ok', 'cas', [null, 'a']],
      [3, 'invoke', 'read'],
      [3, 'ok', 'read', 'c'],
    );
    expect(lin(events)).toBe(true);
  });

  it('compares JSON values deeply, ignoring object key order', () => {
    const v = { a: 1, b: [1, { c: null }] };
    const same = { b: [1, { c: null }], a: 1 };
    expect(
      lin(h([0, 'invoke', 'write', v], [0, 'ok', 'write', v], [1, 'invoke', 'read'], [1, 'ok', 'read', same])),
    ).toBe(true);
    expect(
      lin(
        h([0, 'invoke', 'write', v], [0, 'ok', 'write', v], [1, 'invoke', 'read'], [1, 'ok', 'read', { a: 1, b: [1] }]),
      ),
    ).toBe(false);
    expect(
      lin(h([0, 'invoke', 'write', '1'], [0, 'ok', 'write', '1'], [1, 'invoke', 'read'], [1, 'ok', 'read', 1])),
    ).toBe(false);
  });

  it('keys are independent registers; the failing key is reported', () => {
    const events = h(
      [0, 'invoke', 'write', 1, 'a'],
      [0, 'ok', 'write', 1, 'a'],
      [1, 'invoke', 'write', 1, 'b'],
      [1, 'ok', 'write', 1, 'b'],
      [2, 'invoke', 'read', null, 'a'],
      [2, 'ok', 'read', 1, 'a'],
      [2, 'invoke', 'read', null, 'c'],
      [2, 'ok', 'read', 1, 'c'],
    );
    const r = checkHistory(events);
    expect(r).toMatchObject({ linearizable: false, ops: 4, keys: 3 });
    expect(r.failure?.key).toBe('c');
    expect(r.failure?.window.ops).toHaveLength(1);
  });

  it('a history with no keys is a single register', () => {
    const events: HistoryEvent[] = [
      { process: 0, type: 'invoke', f: 'write', value: 3 },
      { process: 0, type: 'ok', f: 'write', value: 3 },
      { process: 1, type: 'invoke', f: 'read', value: null },
      { process: 1, type: 'ok', f: 'read', value: 4 },
    ];
    const r = checkHistory(events);
    expect(r.linearizable).toBe(false);
    expect(r.failure?.key).toBeNull();
    expect(r.failure?.message).toMatch(/^the register: /);
  });

  it('finds a stale read in the middle of a long history and reports a small window', () => {
    const events: HistoryEvent[] = [];
    for (let i = 1; i <= 200; i++) {
      events.push(
        ...h(
          [0, 'invoke', 'write', i],
          [1, 'invoke', 'read'],
          [0, 'ok', 'write', i],
          [1, 'ok', 'read', i === 120 ? i - 2 : i],
        ),
      );
    }
    const r = checkHistory(events);
    expect(r.linearizable).toBe(false);
    const f = r.failure;
    expect(f?.stuck).toMatchObject({ f: 'read', output: 118, invokeIndex: 119 * 4 + 1 });
    expect(f?.prefixLinearizes).toBe(true);
    // write 119 (still running when the window opens, so its outcome is ignored), the read
    // that saw 119, write 120 and the stale read.
    expect(f?.window.ops.map((o) => [o.f, o.value, o.output, o.outcomeIgnored ?? false])).toEqual([
      ['write', 119, 119, true],
      ['read', null, 119, false],
      ['write', 120, 120, false],
      ['read', null, 118, false],
    ]);
    expect(f?.window.startStates).toBe(120);
  });

  it('marks operations that began before the window as outcome-ignored', () => {
    // The read of 2 started before the stale window; only its invoke precedes the cut.
    const events = h(
      [0, 'invoke', 'write', 1],
      [0, 'ok', 'write', 1],
      [2, 'invoke', 'write', 9],
      [0, 'invoke', 'write', 2],
      [0, 'ok', 'write', 2],
      [1, 'invoke', 'read'],
      [1, 'ok', 'read', 1],
      [2, 'ok', 'write', 9],
    );
    const r = checkHistory(events);
    expect(r.linearizable).toBe(false);
    expect(r.failure?.window.ops.map((o) => [o.f, o.value, o.outcomeIgnored ?? false])).toEqual([
      ['write', 9, true],
      ['write', 2, false],
      ['read', null, false],
    ]);
  });

  it('returns "unknown" when the timeout is hit first', () => {
    const events = simulateHistory(
      'register',
      randomPlan(seededRandom(7), { model: 'register', ops: 3000, workers: 10 }),
    );
    const r = checkHistory(events, { timeoutMs: 0 });
    expect(r.linearizable).toBe('unknown');
    expect(r.failure).toBeUndefined();
  });
});
