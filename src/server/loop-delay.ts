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
 *
 * Beside it, the CPU time the process used between two firings of a RESOLUTION_MS timer
 * (`turnCpu`): what the work in those turns cost, whatever the machine's other processes
 * do. On a loaded machine the delay also counts the time the OS gave other processes (it
 * read 150 ms under load where the turns used 20 ms of CPU); the CPU figure says whether
 * our own work held the loop. It counts every thread of the process (LevelDB's, the GC's),
 * so it can only read high, never hide a long turn.
 */
import {
  createHistogram,
  type IntervalHistogram,
  monitorEventLoopDelay,
  type RecordableHistogram,
} from 'node:perf_hooks';

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
  /** CPU seconds the process used per RESOLUTION_MS interval, over the window: quantiles and the most. */
  readonly turnCpu: { readonly quantiles: readonly (readonly [number, number])[]; readonly max: number };
}

export const LOOP_DELAY_QUANTILES: readonly number[] = [0.5, 0.9, 0.99];

/** CPU time per timer interval, in windows like the delay's. */
class TurnCpuMonitor {
  readonly #windows: [RecordableHistogram, RecordableHistogram] = [createHistogram(), createHistogram()];
  #older = 0;
  #last = process.cpuUsage();
  readonly #sampler: NodeJS.Timeout;

  constructor() {
    this.#sampler = setInterval(() => {
      const now = process.cpuUsage();
      const micros = now.user + now.system - this.#last.user - this.#last.system;
      this.#last = now;
      for (const h of this.#windows) h.record(Math.max(1, micros));
    }, RESOLUTION_MS);
    this.#sampler.unref();
  }

  /** Every WINDOW_MS: the older window starts over and the other one answers. */
  rotate(): void {
    this.#windows[this.#older]!.reset();
    this.#older = 1 - this.#older;
  }

  snapshot(): { readonly quantiles: readonly (readonly [number, number])[]; readonly max: number } {
    const w = this.#windows[this.#older]!;
    const seconds = (micros: number) => (w.count === 0 ? 0 : micros / 1e6);
    return {
      quantiles: LOOP_DELAY_QUANTILES.map((q) => [q, seconds(w.percentile(q * 100))] as const),
      max: seconds(w.max),
    };
  }

  close(): void {
    clearInterval(this.#sampler);
  }
}

export class LoopDelayMonitor {
  readonly #windows: [IntervalHistogram, IntervalHistogram];
  /** The one that has run longer (it answers); the other was reset last. */
  #older = 0;
  readonly #total: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;
  readonly #turnCpu = new TurnCpuMonitor();

  constructor() {
    this.#windows = [
      monitorEventLoopDelay({ resolution: RESOLUTION_MS }),
      monitorEventLoopDelay({ resolution: RESOLUTION_MS }),
    ];
    this.#total = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    for (const h of [...this.#windows, this.#total]) h.enable();
    this.#timer = setInterval(() => {
      this.#windows[this.#older]!.reset();
      this.#older = 1 - this.#older;
      this.#turnCpu.rotate();
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
      turnCpu: this.#turnCpu.snapshot(),
    };
  }

  close(): void {
    clearInterval(this.#timer);
    this.#turnCpu.close();
    for (const h of [...this.#windows, this.#total]) h.disable();
  }
}
