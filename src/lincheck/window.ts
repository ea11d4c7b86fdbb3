/**
 * The minimal failing window: where, in a non-linearizable key's history, it goes wrong.
 *
 * A window is the key's history cut to event positions [from, to]:
 * - operations invoked after `to` are left out; those still running at `to` keep no outcome
 *   (they are treated like `info`: they may or may not take effect, at any later time);
 * - operations that completed before `from` are left out, and the register may start in any
 *   state those earlier operations could have produced (model.reachableStates);
 * - operations invoked before `from` that had not completed by then are kept with their
 *   outcome ignored (again like `info`; an ignored read constrains nothing and is dropped).
 * Each of these steps only removes constraints, so if a window has no linearization from
 * any of its start states, neither does the whole history: every reported window is a
 * genuine witness.
 *
 * Shrinking, with a bounded number of search steps:
 * 1. find the smallest `to` (a completion) whose prefix [start, to] fails: the history
 *    before it linearizes, and the operation completing at `to` is where the search gets
 *    stuck (cutting earlier can only help, so failure is monotone in `to`). The search of
 *    the whole key reports how far it got (its frontier), which is a lower bound and
 *    usually the answer; otherwise binary search above it;
 * 2. find the latest `from` (an operation's invoke, at most the stuck operation's) for
 *    which [from, to] still fails: galloping back from the stuck operation (small windows
 *    are cheap to check), then binary search.
 */
import type { HistoryOp } from './history.js';
import type { AnyModel } from './models/index.js';
import { type SearchOp, type SearchVerdict, searchLinearization } from './search.js';

export interface WindowMember {
  op: HistoryOp;
  /** False when the operation's outcome is ignored in this window (or unknown anyway). */
  known: boolean;
}

export interface Window {
  search: SearchOp[];
  members: WindowMember[];
}

/**
 * The operations of one key cut to [from, to] (see the module comment).
 * `ops` must be in invoke order and hold no `fail` operations.
 */
export function cutWindow(model: AnyModel, ops: readonly HistoryOp[], from: number, to: number): Window {
  const search: SearchOp[] = [];
  const members: WindowMember[] = [];
  for (const op of ops) {
    if (op.invokeIndex > to) break;
    const ret = op.returnIndex;
    const completed = op.outcome === 'ok' && ret !== null && ret <= to;
    if (completed && ret < from) continue;
    const known = completed && op.invokeIndex >= from;
    const decoded = model.decode(op, known);
    if (decoded === null) continue;
    search.push({
      input: decoded.input,
      output: decoded.output,
      call: op.invokeIndex,
      ret: known ? (ret as number) : Infinity,
    });
    members.push({ op, known });
  }
  return { search, members };
}

export interface ShrinkBudget {
  /** Search steps for all probes together. */
  maxSteps: number;
  /** performance.now() deadline for all probes together. */
  deadline: number;
  /** Most start states to try for a window cut on the left. */
  maxStartStates: number;
}

export interface ShrinkResult {
  /** Window bounds: event indices. */
  from: number;
  to: number;
  window: Window;
  /** The operation whose completion at `to` no linearization of the history before it allows. */
  stuck: HistoryOp;
  /** Whether the history strictly before `to` was shown to linearize. */
  prefixLinearizes: boolean;
  /** How many start states the window was checked from (1 = just the model's initial state). */
  startStates: number;
  /** Whether both binary searches ran to completion, every probe conclusive. */
  minimal: boolean;
}

/**
 * Shrinks a key's non-linearizable history (already known to fail as a whole) to the
 * smallest failing window found within the budget.
 */
export function shrinkFailure(
  model: AnyModel,
  ops: readonly HistoryOp[],
  frontier: number,
  budget: ShrinkBudget,
): ShrinkResult {
  let stepsLeft = budget.maxSteps;
  let conclusive = true;
  const probe = (from: number, to: number, starts: readonly unknown[]): SearchVerdict => {
    if (stepsLeft <= 0 || performance.now() > budget.deadline) {
      conclusive = false;
      return 'budget';
    }
    const { search } = cutWindow(model, ops, from, to);
    const r = searchLinearization(model, search, {
      initialStates: starts,
      maxSteps: stepsLeft,
      deadline: budget.deadline,
    });
    stepsLeft -= r.steps;
    if (r.verdict === 'budget' || r.verdict === 'timeout') conclusive = false;
    return r.verdict;
  };
  const init = [model.init()];

  // 1. The smallest failing prefix, ending at a known completion. The failed search of the
  //    whole key already showed that the history before `frontier` linearizes.
  const completions = ops
    .filter((op) => op.outcome === 'ok')
    .sort((a, b) => (a.returnIndex as number) - (b.returnIndex as number));
  if (completions.length === 0) throw new Error('shrinkFailure: a history with no completed operation cannot fail');
  const atFrontier = completions.findIndex((op) => (op.returnIndex as number) >= frontier);
  const known = Math.max(atFrontier, 0);
  let lo = known;
  let hi = completions.length - 1; // the whole history fails (the caller established it)
  const verdicts = new Map<number, SearchVerdict>();
  const probePrefix = (k: number): boolean => {
    const v = probe(0, (completions[k] as HistoryOp).returnIndex as number, init);
    verdicts.set(k, v);
    return v === 'not-linearizable';
  };
  // The frontier is usually exactly where it fails: try it first.
  if (lo < hi) {
    if (probePrefix(lo)) hi = lo;
    else lo++;
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (probePrefix(mid)) hi = mid;
    else lo = mid + 1;
  }
  const stuck = completions[hi] as HistoryOp;
  const to = stuck.returnIndex as number;
  // If hi > known then hi - 1 was probed.
  const prefixLinearizes = hi === known || verdicts.get(hi - 1) === 'linearizable';

  // 2. The latest start, at an operation's invoke, for which [from, to] still fails.
  const cuts = ops.filter((op) => op.invokeIndex <= stuck.invokeIndex).map((op) => op.invokeIndex);
  const startsFor = (j: number): readonly unknown[] | undefined => {
    if (j === 0) return init;
    const from = cuts[j] as number;
    const inputs: unknown[] = [];
    for (const op of ops) {
      if (op.invokeIndex >= from) break;
      const d = model.decode(op, false);
      if (d !== null) inputs.push(d.input);
    }
    return model.reachableStates?.(inputs, budget.maxStartStates);
  };
  // Windows close to the stuck operation are small and cheap to check, so gallop back from
  // it, then binary search between the last passing and the first failing cut.
  const bestStarts = new Map<number, readonly unknown[]>([[0, init]]);
  const windowFails = (j: number): boolean => {
    const starts = startsFor(j);
    if (starts === undefined) return false; // too many possible start states: do not cut here
    if (probe(cuts[j] as number, to, starts) !== 'not-linearizable') return false;
    bestStarts.set(j, starts);
    return true;
  };
  const last = cuts.length - 1;
  let good = 0; // [cuts[good], to] fails
  let bad = last + 1; // [cuts[bad], to] was not shown to fail
  for (let stride = 1, j = last; j > good; stride *= 2, j = Math.max(good, bad - stride)) {
    if (windowFails(j)) {
      good = j;
      break;
    }
    bad = j;
  }
  while (bad - good > 1) {
    const mid = (good + bad) >>> 1;
    if (windowFails(mid)) good = mid;
    else bad = mid;
  }
  const best = good;
  const from = cuts[best] as number;
  return {
    from,
    to,
    window: cutWindow(model, ops, from, to),
    stuck,
    prefixLinearizes,
    startStates: (bestStarts.get(best) as readonly unknown[]).length,
    minimal: conclusive,
  };
}
