/**
 * Tells whoever is on call that this node's disk is slow: one warning per interval with
 * how many Raft writes were slow since the last one and the slowest, instead of a line per
 * write (a disk stalling under load would flood the log), and the slowest write of the
 * recent past for /v1/cluster, so the leader's page shows which member's disk it is.
 * Pure: time is an argument.
 */
export interface SlowDiskOptions {
  /** A write slower than this counts as slow (etcd warns about fdatasync past 1 s). */
  readonly slowMs?: number;
  /** At most one warning per this long. */
  readonly reportEveryMs?: number;
  /** How far back `recentMaxMs` looks. */
  readonly recentMs?: number;
}

export interface SlowDiskReport {
  /** Slow writes since the last report, this one included. */
  readonly count: number;
  readonly maxMs: number;
  readonly lastMs: number;
}

export class SlowDiskReporter {
  readonly #slowMs: number;
  readonly #everyMs: number;
  readonly #recentMs: number;
  #lastReportAt = Number.NEGATIVE_INFINITY;
  #pending = 0;
  #pendingMax = 0;
  /** Slow writes of the recent past: [at, ms]. */
  #recent: [number, number][] = [];

  constructor(options: SlowDiskOptions = {}) {
    this.#slowMs = options.slowMs ?? 500;
    this.#everyMs = options.reportEveryMs ?? 10_000;
    this.#recentMs = options.recentMs ?? 30_000;
  }

  /** One write took `ms`; returns what to report now, if anything. */
  observe(ms: number, now: number): SlowDiskReport | null {
    if (ms < this.#slowMs) return null;
    this.#recent.push([now, ms]);
    this.#pending++;
    this.#pendingMax = Math.max(this.#pendingMax, ms);
    if (now - this.#lastReportAt < this.#everyMs) return null;
    const report = { count: this.#pending, maxMs: Math.round(this.#pendingMax), lastMs: Math.round(ms) };
    this.#lastReportAt = now;
    this.#pending = 0;
    this.#pendingMax = 0;
    return report;
  }

  /** The slowest slow write within the recent past (0 if none). */
  recentMaxMs(now: number): number {
    this.#recent = this.#recent.filter(([at]) => now - at < this.#recentMs);
    let max = 0;
    for (const [, ms] of this.#recent) max = Math.max(max, ms);
    return Math.round(max);
  }
}
