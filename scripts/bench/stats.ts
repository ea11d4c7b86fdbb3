/**
 * Latency statistics for the benchmark: a growable sample buffer and percentiles.
 *
 * Samples are kept exactly (every request's latency, as a float64 in ms) rather than in a
 * histogram: a run is bounded in count, so even the longest run keeps a few MB, and exact
 * samples make p999 of a 10-second run honest.
 */

/** Nearest-rank percentile of an ascending array: the smallest sample with at least p% at or below it. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0 || !(p >= 0 && p <= 100)) return Number.NaN;
  const rank = Math.ceil((p / 100) * n);
  const i = Math.min(n - 1, Math.max(0, rank - 1));
  return sorted[i]!;
}

export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Summary of unsorted samples (the input is not modified). */
export function summarize(samples: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(samples as ArrayLike<number>).sort();
  const n = sorted.length;
  if (n === 0) return { count: 0, min: NaN, mean: NaN, p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    count: n,
    min: sorted[0]!,
    mean: sum / n,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted[n - 1]!,
  };
}

/** An append-only float64 buffer that doubles when full. */
export class Samples {
  private buf: Float64Array;
  private n = 0;

  constructor(initial = 4096) {
    this.buf = new Float64Array(Math.max(16, initial));
  }

  push(v: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }

  get length(): number {
    return this.n;
  }

  values(): Float64Array {
    return this.buf.subarray(0, this.n);
  }

  summary(): Summary {
    return summarize(this.values());
  }
}

/** Median of a few numbers (NaN when empty); used to combine repeated runs. */
export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
