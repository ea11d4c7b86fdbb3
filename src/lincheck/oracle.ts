/**
 * A brute-force linearizability oracle for small histories (tests only): tries every order
 * of the operations that respects real-time order, against a SequentialSpec. It shares no
 * code with the checker's search or models (it pairs events itself, too).
 *
 * Semantics: a `fail` operation did not happen; an operation completed with `info` (or not
 * completed) may take effect at any time after its invoke, or never; all others must take
 * effect between invoke and completion, with the recorded result.
 */
import { canonicalJson } from './canonical.js';
import type { HistoryEvent } from './history.js';
import type { SequentialSpec } from './simulate.js';

interface OracleOp {
  key: string;
  f: string;
  value: unknown;
  known: boolean;
  output: unknown;
  invoke: number;
  ret: number;
}

export function bruteForceLinearizable(events: readonly HistoryEvent[], spec: SequentialSpec, maxOps = 9): boolean {
  const open = new Map<unknown, OracleOp & { done: boolean; failed: boolean }>();
  const all: (OracleOp & { done: boolean; failed: boolean })[] = [];
  events.forEach((e, i) => {
    if (e.type === 'invoke') {
      const op = {
        key: canonicalJson(e.key ?? null),
        f: e.f,
        value: e.value ?? null,
        known: false,
        output: null as unknown,
        invoke: i,
        ret: Infinity,
        done: false,
        failed: false,
      };
      all.push(op);
      open.set(e.process, op);
      return;
    }
    const op = open.get(e.process);
    if (op === undefined) throw new Error(`oracle: completion without invoke at event ${i}`);
    open.delete(e.process);
    if (e.type === 'ok') {
      op.known = true;
      op.output = e.value ?? null;
      op.ret = i;
    } else if (e.type === 'fail') {
      op.failed = true;
    }
  });
  const ops: OracleOp[] = all.filter((op) => !op.failed);
  if (ops.length > maxOps) throw new Error(`oracle: ${ops.length} operations is too many to brute-force`);

  const n = ops.length;
  const mustGoFirst = ops.map((x) => ops.map((y, j) => (y.known && y.ret < x.invoke ? j : -1)).filter((j) => j >= 0));
  const knownMask = ops.reduce((m, op, i) => (op.known ? m | (1 << i) : m), 0);
  const states = new Map<string, unknown>();
  const stateOf = (key: string): unknown => (states.has(key) ? states.get(key) : spec.init());

  const search = (used: number): boolean => {
    if ((used & knownMask) === knownMask) return true;
    for (let i = 0; i < n; i++) {
      if (used & (1 << i)) continue;
      if (!(mustGoFirst[i] as number[]).every((j) => used & (1 << j))) continue;
      const op = ops[i] as OracleOp;
      const before = stateOf(op.key);
      const r = spec.apply(before, op.f, op.value);
      if (op.known && !(r.ok && spec.matches(op.f, r.output, op.output))) continue;
      states.set(op.key, r.ok ? r.next : before);
      const found = search(used | (1 << i));
      states.set(op.key, before);
      if (found) return true;
    }
    return false;
  };
  return search(0);
}
