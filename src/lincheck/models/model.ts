/**
 * The model interface: a sequential specification the checker searches against.
 */
import type { HistoryEvent, HistoryOp } from '../history.js';

export type StepResult<State> = { ok: true; next: State } | { ok: false };

export interface DecodedOp<Input, Output> {
  input: Input;
  output: Output;
}

/**
 * A sequential specification.
 *
 * Contract (the search and the failure-window shrinking rely on it):
 * - states are immutable values; `equal` is exact and `hash` is a 32-bit integer consistent
 *   with `equal`;
 * - `decode(op, false)` describes the operation with its outcome unknown (an `info`, a
 *   missing completion, or an operation whose result the window shrinker chooses to ignore).
 *   It returns null when such an operation constrains nothing (a read); otherwise `step` on
 *   the decoded operation must always succeed, and from any state where the known-outcome
 *   version of the same operation succeeds it must yield the same next state;
 * - `readOnly` (optional) must never claim an operation that can change the state;
 * - `reachableStates` (optional) over-approximates the states that any subset of the given
 *   operations, applied in any order starting from `init()`, can produce. It returns
 *   undefined when that set would exceed `limit`. Without it the failure window is never cut
 *   on the left.
 */
export interface Model<State, Input, Output> {
  readonly name: string;
  init(): State;
  step(state: State, input: Input, output: Output): StepResult<State>;
  equal(a: State, b: State): boolean;
  hash(state: State): number;
  /** The independent object an operation touches (P-compositionality): the key. */
  partition(op: HistoryOp): string;
  /** Model-specific validation of one event: the problem, or undefined when fine. */
  validate(event: HistoryEvent): string | undefined;
  /** Turns a paired operation into model input/output; `known` is false when the outcome is unknown. */
  decode(op: HistoryOp, known: boolean): DecodedOp<Input, Output> | null;
  reachableStates?(inputs: readonly Input[], limit: number): State[] | undefined;
  /**
   * Optional pruning hint: true only if every successful step of this operation, from any
   * state, leaves the state unchanged (a read). The search then linearizes such an
   * operation as soon as it can, without branching.
   */
  readOnly?(input: Input, output: Output): boolean;
}

// biome-ignore lint/suspicious/noExplicitAny: a model of any state, input and output type; callers never look inside.
export type AnyModel = Model<any, any, any>;

/** A 32-bit integer hash of a number (splitmix-style finalizer). */
export function mix32(x: number): number {
  let h = (x ^ (x / 4294967296)) | 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/** Interns strings as small integers, in order of first appearance from 0. */
export class Interner {
  private readonly ids = new Map<string, number>();
  constructor(first: string) {
    this.id(first);
  }
  id(s: string): number {
    let id = this.ids.get(s);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(s, id);
    }
    return id;
  }
}
