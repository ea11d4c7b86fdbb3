/**
 * Load-balancing pickers: given the instances a consumer may use, choose one per call.
 *
 * Every picker skips instances with weight 0 ("listed, but send nothing"). A pick is
 * returned with `done()`, which the caller invokes when the call ends, successful or not;
 * only least-outstanding uses it, but calling it always keeps the choice of picker free.
 * Pickers keep per-instance state by instance id, so they stay fair while the list changes.
 * Randomness comes from an injected source, so tests (and simulations) are repeatable.
 */
import type { Instance } from './types.js';

export interface Picked {
  readonly instance: Instance;
  /** Call when the request to `instance` has finished. Idempotent. */
  done(): void;
}

export interface Picker {
  readonly name: string;
  /** Undefined when no instance can take traffic (none, or every weight 0). */
  pick(instances: readonly Instance[]): Picked | undefined;
}

export type PickerName = 'round-robin' | 'random' | 'weighted' | 'least-outstanding';

const noop = (): void => {};
const picked = (instance: Instance): Picked => ({ instance, done: noop });
const usable = (instances: readonly Instance[]): Instance[] => instances.filter((i) => i.weight > 0);

/** Each instance in turn. */
export class RoundRobinPicker implements Picker {
  readonly name = 'round-robin';
  #next = 0;

  pick(instances: readonly Instance[]): Picked | undefined {
    const ok = usable(instances);
    if (ok.length === 0) return undefined;
    const i = this.#next++ % ok.length;
    if (this.#next >= Number.MAX_SAFE_INTEGER) this.#next = 0;
    return picked(ok[i]!);
  }
}

/** Uniformly at random. */
export class RandomPicker implements Picker {
  readonly name = 'random';
  constructor(private readonly random: () => number = Math.random) {}

  pick(instances: readonly Instance[]): Picked | undefined {
    const ok = usable(instances);
    if (ok.length === 0) return undefined;
    return picked(ok[Math.min(ok.length - 1, Math.floor(this.random() * ok.length))]!);
  }
}

/**
 * In proportion to weight, spread evenly: smooth weighted round-robin (as nginx does it).
 * Each pick adds every instance's weight to its running score, takes the highest and
 * subtracts the total from it; weights 5,1,1 give a a b a c a a, never a a a a a b c.
 */
export class WeightedPicker implements Picker {
  readonly name = 'weighted';
  readonly #score = new Map<string, number>();

  pick(instances: readonly Instance[]): Picked | undefined {
    const ok = usable(instances);
    if (ok.length === 0) return undefined;
    let total = 0;
    let best: Instance | undefined;
    let bestScore = -Infinity;
    for (const i of ok) {
      const s = (this.#score.get(i.id) ?? 0) + i.weight;
      this.#score.set(i.id, s);
      total += i.weight;
      if (s > bestScore) {
        bestScore = s;
        best = i;
      }
    }
    this.#score.set(best!.id, bestScore - total);
    if (this.#score.size > ok.length * 2) this.#forget(ok);
    return picked(best!);
  }

  #forget(live: readonly Instance[]): void {
    const ids = new Set(live.map((i) => i.id));
    for (const id of this.#score.keys()) if (!ids.has(id)) this.#score.delete(id);
  }
}

/**
 * The instance with the fewest calls in flight from this client (counted between pick and
 * `done()`); ties go round-robin, so an idle service still spreads its load.
 */
export class LeastOutstandingPicker implements Picker {
  readonly name = 'least-outstanding';
  readonly #outstanding = new Map<string, number>();
  #tie = 0;

  /** Calls in flight to `id`, as this picker counts them. */
  outstanding(id: string): number {
    return this.#outstanding.get(id) ?? 0;
  }

  pick(instances: readonly Instance[]): Picked | undefined {
    const ok = usable(instances);
    if (ok.length === 0) return undefined;
    let min = Infinity;
    const ties: Instance[] = [];
    for (const i of ok) {
      const n = this.outstanding(i.id);
      if (n < min) {
        min = n;
        ties.length = 0;
      }
      if (n === min) ties.push(i);
    }
    const chosen = ties[this.#tie++ % ties.length]!;
    if (this.#tie >= Number.MAX_SAFE_INTEGER) this.#tie = 0;
    this.#outstanding.set(chosen.id, min + 1);
    let released = false;
    return {
      instance: chosen,
      done: () => {
        if (released) return;
        released = true;
        const n = (this.#outstanding.get(chosen.id) ?? 1) - 1;
        if (n <= 0) this.#outstanding.delete(chosen.id);
        else this.#outstanding.set(chosen.id, n);
      },
    };
  }
}

export function createPicker(name: PickerName, random: () => number = Math.random): Picker {
  switch (name) {
    case 'round-robin':
      return new RoundRobinPicker();
    case 'random':
      return new RandomPicker(random);
    case 'weighted':
      return new WeightedPicker();
    case 'least-outstanding':
      return new LeastOutstandingPicker();
  }
}
