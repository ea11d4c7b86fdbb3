/**
 * How late this process's event loop runs: the one number that says whether some work held
 * it (a listing built in one turn once held a leader 1.3-1.8 s, long enough for its
 * followers to elect another). Measured with `perf_hooks.monitorEventLoopDelay`, whose timer
 * fires every RESOLUTION_MS and records how long each interval really took; the delay is
 * that minus RESOLUTION_MS.
 *
 * Quantiles cover a sliding window of WINDOW_MS to 2 × WINDOW_MS: two histograms take turns,
 * and the older is reset every WINDOW_MS, so a stall shows for at least WINDOW_MS after it
 * ends and at most twice that. Sum and count run from the start, as a Prometheus summary's do.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

const RESOLUTION_MS = 10;
const WINDOW_MS = 10_000;

export interface LoopDelaySnapshot {
  /** [quantile, seconds], over the window. */
  readonly quantiles: readonly (readonly [number, number])[];
  /** The longest delay in the window, in seconds. */
  readonly max: number;
  /** Since start: delays in seconds, summed, and how many were measured. */
  readonly sum: number;
  readonly count: number;
}

export const LOOP_DELAY_QUANTILES: readonly number[] = [0.5, 0.9, 0.99];

export class LoopDelayMonitor {
  readonly #windows: [IntervalHistogram, IntervalHistogram];
  /** The one that has run longer (it answers); the other was reset last. */
  #older = 0;
  readonly #total: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;

  constructor() {
    this.#windows = [monitorEventLoopDelay({ resolution: RESOLUTION_MS }), monitorEventLoopDelay({ resolution: RESOLUTION_MS })];
    this.#total = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    for (const h of [...this.#windows, this.#total]) h.enable();
    this.#timer = setInterval(() => {
      this.#windows[this.#older]!.reset();
      this.#older = 1 - this.#older;
    }, WINDOW_MS);
    this.#timer.unref();
  }

  snapshot(): LoopDelaySnapshot {
    const w = this.#windows[this.#older]!;
    const empty = w.count === 0;
    const delay = (ns: number) => (empty ? 0 : Math.max(0, ns / 1e6 - RESOLUTION_MS) / 1000);
    const total = this.#total;
    const count = total.count;
    return {
      quantiles: LOOP_DELAY_QUANTILES.map((q) => [q, delay(w.percentile(q * 100))] as const),
      max: delay(w.max),
      sum: count === 0 ? 0 : (Math.max(0, total.mean / 1e6 - RESOLUTION_MS) / 1000) * count,
      count,
    };
  }

  close(): void {
    clearInterval(this.#timer);
    for (const h of [...this.#windows, this.#total]) h.disable();
  }
}
