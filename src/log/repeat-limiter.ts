/**
 * Repeated log lines, rate-limited per key (a source address and a reason, say).
 *
 * The first occurrence of a key is logged in full by the caller (`admit` answers true);
 * later ones are only counted, and once per interval one summary reports how many there
 * were (`onSummary`). A key that stays quiet for a whole interval is forgotten, so its next
 * occurrence is logged in full again. A flood from one source thus writes one line per
 * interval instead of one per event (issue 22: a client without the cluster secret looping
 * on the peer port wrote ~14,000 lines in 25 s), while a one-off still gets its full line
 * at once.
 *
 * Invariants:
 * - Every occurrence is either logged in full or counted in exactly one summary (the last
 *   ones by `close()`), so the counts add up.
 * - At most `maxKeys` keys are tracked; beyond that, new keys share the `OTHER_KEYS` entry,
 *   so a flood from many addresses cannot grow memory either.
 * - Time comes from the injected monotonic `now` (default `performance.now`); a timer only
 *   makes sure a summary is not held back when the flood stops.
 */

/** The entry new keys share once `maxKeys` are tracked. */
export const OTHER_KEYS = '(other sources)';

export interface RepeatSummary<T> {
  readonly key: string;
  /** What the caller passed with the first occurrence of the key (of the first key, for OTHER_KEYS). */
  readonly context: T;
  /** Occurrences counted, not logged, since the key's last line. */
  readonly count: number;
  /** The period they fall in, in ms. */
  readonly periodMs: number;
}

export interface RepeatLimiterOptions<T> {
  /** One summary per key per this many ms at most (default 10 s). */
  readonly intervalMs?: number;
  /** Keys tracked at once (default 1024). */
  readonly maxKeys?: number;
  /** Monotonic milliseconds (default `performance.now`). */
  readonly now?: () => number;
  readonly onSummary: (summary: RepeatSummary<T>) => void;
}

interface Entry<T> {
  readonly context: T;
  /** Start of the current period: the full line, or the last summary. */
  since: number;
  count: number;
}

export class RepeatLimiter<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly intervalMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly onSummary: (summary: RepeatSummary<T>) => void;
  /** Earliest time an entry's period ends (Infinity with no entries). */
  private nextDue = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(options: RepeatLimiterOptions<T>) {
    this.intervalMs = options.intervalMs ?? 10_000;
    this.maxKeys = options.maxKeys ?? 1024;
    this.now = options.now ?? (() => performance.now());
    this.onSummary = options.onSummary;
    if (!(this.intervalMs > 0)) throw new RangeError('intervalMs must be positive');
    if (!Number.isInteger(this.maxKeys) || this.maxKeys < 1) throw new RangeError('maxKeys must be a positive integer');
  }

  /** One occurrence of `key`. True: log it in full now. False: it was counted for the next summary. */
  admit(key: string, context: T): boolean {
    const now = this.now();
    if (now >= this.nextDue) this.sweep(now);
    const k = this.entries.has(key) || this.entries.size < this.maxKeys ? key : OTHER_KEYS;
    const entry = this.entries.get(k);
    if (entry !== undefined) {
      entry.count++;
      return false;
    }
    if (this.closed) return true;
    this.entries.set(k, { context, since: now, count: 0 });
    this.nextDue = Math.min(this.nextDue, now + this.intervalMs);
    this.arm(now);
    return true;
  }

  /** Keys tracked now (for tests and stats). */
  get size(): number {
    return this.entries.size;
  }

  /** Reports every count not reported yet and stops; later occurrences are all logged in full. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const now = this.now();
    for (const [key, e] of this.entries) if (e.count > 0) this.report(key, e, now);
    this.entries.clear();
    this.nextDue = Number.POSITIVE_INFINITY;
  }

  /** Summarizes every key whose period ended; forgets those that were quiet for all of it. */
  private sweep(now: number): void {
    let next = Number.POSITIVE_INFINITY;
    for (const [key, e] of this.entries) {
      if (now - e.since >= this.intervalMs) {
        if (e.count === 0) {
          this.entries.delete(key);
          continue;
        }
        this.report(key, e, now);
        e.since = now;
        e.count = 0;
      }
      next = Math.min(next, e.since + this.intervalMs);
    }
    this.nextDue = next;
  }

  private report(key: string, e: Entry<T>, now: number): void {
    this.onSummary({ key, context: e.context, count: e.count, periodMs: now - e.since });
  }

  private arm(now: number): void {
    if (this.timer !== null || this.closed || this.entries.size === 0) return;
    // With an injected clock that real time does not move, this just looks again later.
    const wait = Number.isFinite(this.nextDue) ? Math.max(1, this.nextDue - now) : this.intervalMs;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        const t = this.now();
        if (t >= this.nextDue) this.sweep(t);
        this.arm(t);
      },
      Math.min(wait, this.intervalMs),
    );
    this.timer.unref();
  }
}
