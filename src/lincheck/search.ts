/**
 * The search: Wing & Gong's backtracking linearization search with Lowe's memoization, in
 * the style of Porcupine (github.com/anishathalye/porcupine, checker.go), for the
 * operations of ONE partition (key).
 *
 * The history is a doubly linked list of call and return entries in real-time order. The
 * candidates for the next linearization point are the call entries before the first return
 * entry; linearizing one "lifts" its call and return out of the list. Reaching a return
 * entry means the operation it belongs to had to be linearized already: backtrack
 * (unlift). Operations whose outcome is unknown return at +infinity: they may be
 * linearized anywhere after their call, or never, so the search succeeds as soon as every
 * operation with a known outcome is linearized.
 *
 * A cache of configurations (the linearized operations and the model state, which are all
 * the future of the search depends on) prunes those already explored; see cache.ts for
 * how it treats operations of unknown outcome. Two more prunings keep the search narrow:
 * read-only operations that succeed are linearized at once without branching, and the
 * operation whose return comes first is tried first.
 */

import { LinearizedSet } from './bitset.js';
import { ConfigCache } from './cache.js';
import type { AnyModel } from './models/index.js';

export interface SearchOp<Input = unknown, Output = unknown> {
  input: Input;
  output: Output;
  /** Real-time position of the call (e.g. the invoke event's index). */
  call: number;
  /** Real-time position of the return; Infinity when the outcome is unknown. */
  ret: number;
}

export interface SearchOptions {
  /** Start states to try (default: [model.init()]); the cache is shared between them. */
  initialStates?: readonly unknown[];
  /** Give up (verdict "timeout") once performance.now() passes this. */
  deadline?: number;
  /** Give up (verdict "budget") after this many search steps. */
  maxSteps?: number;
}

export type SearchVerdict = 'linearizable' | 'not-linearizable' | 'timeout' | 'budget';

export interface SearchResult {
  verdict: SearchVerdict;
  /** Search steps taken (model steps). */
  steps: number;
  /** On "linearizable": the operations (indices into `ops`) in linearization order: every
   *  operation with a known outcome, and those of unknown outcome that took effect. */
  order?: number[];
  /**
   * The furthest the search got: the largest real-time position of the first pending
   * return over all configurations it entered. Every operation that returns before it was
   * linearized in some configuration, so the history before that position linearizes.
   */
  frontier: number;
}

export function searchLinearization(
  model: AnyModel,
  ops: readonly SearchOp[],
  options: SearchOptions = {},
): SearchResult {
  const n = ops.length;
  const initialStates = options.initialStates ?? [model.init()];
  if (n === 0) return { verdict: 'linearizable', steps: 0, order: [], frontier: Infinity };
  const deadline = options.deadline ?? Infinity;
  const maxSteps = options.maxSteps ?? Infinity;

  // Entries: call of op i is entry i, its return is entry n + i. HEAD and TAIL are sentinels.
  const E = 2 * n;
  const HEAD = E;
  const TAIL = E + 1;
  const pos = new Float64Array(E);
  for (let i = 0; i < n; i++) {
    const op = ops[i] as SearchOp;
    pos[i] = op.call;
    pos[n + i] = op.ret;
  }
  const sorted = Array.from({ length: E }, (_, e) => e);
  sorted.sort((a, b) => (pos[a] as number) - (pos[b] as number) || a - b);
  const next = new Int32Array(E + 2);
  const prev = new Int32Array(E + 2);
  let last = HEAD;
  for (const e of sorted) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = TAIL;
  prev[TAIL] = last;

  const lift = (c: number): void => {
    const r = c + n;
    next[prev[c] as number] = next[c] as number;
    prev[next[c] as number] = prev[c] as number;
    next[prev[r] as number] = next[r] as number;
    prev[next[r] as number] = prev[r] as number;
  };
  const unlift = (c: number): void => {
    const r = c + n;
    next[prev[r] as number] = r;
    prev[next[r] as number] = r;
    next[prev[c] as number] = c;
    prev[next[c] as number] = c;
  };

  // Known-outcome operations are numbered 0.. in `known` (the set K of the cache), unknown
  // ones 0.. in `unknown` (the set U).
  const isKnown = new Uint8Array(n);
  const slot = new Int32Array(n);
  const readOnly = new Uint8Array(n);
  let knownCount = 0;
  let unknownCount = 0;
  for (let i = 0; i < n; i++) {
    const op = ops[i] as SearchOp;
    isKnown[i] = op.ret === Infinity ? 0 : 1;
    slot[i] = isKnown[i] === 1 ? knownCount++ : unknownCount++;
    readOnly[i] = isKnown[i] === 1 && model.readOnly?.(op.input, op.output) === true ? 1 : 0;
  }
  const known = new LinearizedSet(knownCount);
  const unknownWords = (unknownCount + 31) >>> 5;
  const unknown = new Int32Array(unknownWords);
  const mark = (c: number): void => {
    const i = slot[c] as number;
    if (isKnown[c] === 1) known.set(i);
    else unknown[i >>> 5] = (unknown[i >>> 5] as number) | (1 << (i & 31));
  };
  const unmark = (c: number): void => {
    const i = slot[c] as number;
    if (isKnown[c] === 1) known.clear(i);
    else unknown[i >>> 5] = (unknown[i >>> 5] as number) & ~(1 << (i & 31));
  };
  const cache = new ConfigCache((a, b) => model.equal(a, b), unknownWords, 4 * n);
  const stackEntry = new Int32Array(n);
  const stackState: unknown[] = new Array<unknown>(n);
  // Branching candidates of every level on the stack, level d's at cand[frameStart[d] ..
  // frameEnd[d]), the one being tried at frameCur[d].
  let cand = new Int32Array(Math.max(16, 4 * n));
  let candTop = 0;
  const frameStart = new Int32Array(n + 1);
  const frameCur = new Int32Array(n + 1);
  const frameEnd = new Int32Array(n + 1);
  let steps = 0;
  let frontier = -Infinity;
  let nextCheck = 1024;
  const outOfBudget = (): SearchVerdict | undefined => {
    nextCheck = steps + 1024;
    if (steps >= maxSteps) return 'budget';
    if (deadline !== Infinity && performance.now() > deadline) return 'timeout';
    return undefined;
  };

  let state: unknown;
  let depth = 0;
  /** Linearizes `c` (its step gave `next`) unless an equal or subsuming configuration was entered before. */
  const descend = (c: number, next: unknown): boolean => {
    mark(c);
    if (!cache.add(known, unknown, next, model.hash(next) | 0)) {
      unmark(c);
      return false;
    }
    stackEntry[depth] = c;
    stackState[depth] = state;
    depth++;
    state = next;
    lift(c);
    return true;
  };

  attempt: for (const start of initialStates) {
    state = start;
    depth = 0;
    candTop = 0;
    enter: for (;;) {
      // A new level: the configuration is new to the search.
      let blocking = next[HEAD] as number;
      while (blocking < n) blocking = next[blocking] as number;
      if (blocking === TAIL || isKnown[blocking - n] === 0) {
        // Every operation with a known outcome is linearized; the rest never took effect.
        return { verdict: 'linearizable', steps, order: Array.from(stackEntry.subarray(0, depth)), frontier: Infinity };
      }
      if ((pos[blocking] as number) > frontier) frontier = pos[blocking] as number;
      if (steps >= nextCheck) {
        const stop = outOfBudget();
        if (stop !== undefined) return { verdict: stop, steps, frontier };
      }
      frameStart[depth] = frameCur[depth] = frameEnd[depth] = candTop;
      // A read-only candidate that succeeds now may be linearized now without loss of
      // generality: moving it to the front of any linearization of the rest keeps that
      // linearization valid (no remaining operation must precede it, and it changes no
      // state). So take it and do not branch at this level.
      let forcedFailed = false;
      let e = next[HEAD] as number;
      for (; e < n; e = next[e] as number) {
        if (readOnly[e] === 0) continue;
        const op = ops[e] as SearchOp;
        steps++;
        const r = model.step(state, op.input, op.output);
        if (!r.ok) continue;
        if (descend(e, r.next)) continue enter;
        forcedFailed = true; // subsumed by a configuration that failed: so does this level
        break;
      }
      if (!forcedFailed) {
        for (e = next[HEAD] as number; e < n; e = next[e] as number) {
          if (readOnly[e] === 1) continue;
          if (candTop === cand.length) {
            const bigger = new Int32Array(cand.length * 2);
            bigger.set(cand);
            cand = bigger;
          }
          cand[candTop++] = e;
        }
        frameEnd[depth] = candTop;
        // Try the most urgent operation first: the one whose return entry comes first.
        const urgent = blocking - n;
        const first = frameStart[depth] as number;
        for (let k = first; k < candTop; k++) {
          if (cand[k] === urgent) {
            cand.copyWithin(first + 1, first, k);
            cand[first] = urgent;
            break;
          }
        }
      }
      for (;;) {
        const k = frameCur[depth] as number;
        if (k < (frameEnd[depth] as number)) {
          if (steps >= nextCheck) {
            const stop = outOfBudget();
            if (stop !== undefined) return { verdict: stop, steps, frontier };
          }
          const c = cand[k] as number;
          const op = ops[c] as SearchOp;
          steps++;
          const r = model.step(state, op.input, op.output);
          if (r.ok && descend(c, r.next)) continue enter;
          frameCur[depth] = k + 1;
          continue;
        }
        // This level is exhausted: backtrack to the previous one.
        if (depth === 0) continue attempt;
        candTop = frameStart[depth] as number;
        depth--;
        const c = stackEntry[depth] as number;
        state = stackState[depth];
        stackState[depth] = undefined;
        unmark(c);
        unlift(c);
        frameCur[depth] = (frameCur[depth] as number) + 1;
      }
    }
  }
  return { verdict: 'not-linearizable', steps, frontier };
}
