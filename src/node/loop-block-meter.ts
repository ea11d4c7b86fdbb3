/**
 * How long this node's event loop was held: a timer on the node's clock beats every
 * `periodMs`, and a beat that comes more than `toleranceMs` late was held back by a turn
 * that would not end (a long synchronous decode, apply or snapshot preparation, a GC pause)
 * for all its lateness. Nothing that waits on the loop could run meanwhile: not the callback
 * of a finished fsync, not a keepalive waiting in a socket. So that time is nobody's fault
 * but the loop's, and judgements of others' timeliness leave it out:
 *
 * - the disk-stall rule (ready-loop.ts): a write counts as stalled only for time the loop
 *   was free to see it finish;
 * - session deadlines on the leader (leader-duties.ts): a block gives every session the
 *   time its keepalives may have waited unread.
 *
 * Readers subtract two readings of `blockedMs()`, a running total. It includes the block
 * that is just ending: code that reads it runs, so the loop is free again, and a beat that
 * is overdue now was held back (timers due together run in the order they were due, so
 * after a block the reader may run before the beat that would record it).
 *
 * Late beats from load rather than one long turn (many short callbacks, each a socket
 * that was readable) count as a block only past the tolerance: under such load the loop
 * still turns, but it reaches any one callback late, as it does a keepalive.
 */
import type { Logger } from '../log/index.js';
import type { NodeClock, Timer } from './clock.js';

export interface LoopBlockMeterOptions {
  /** How often the meter's timer beats (default 100 ms). */
  readonly periodMs?: number;
  /** A beat later than this counts as a block, all its lateness (default 100 ms). */
  readonly toleranceMs?: number;
  /** A block at least this long is logged (default 1 s). */
  readonly reportMs?: number;
}

export class LoopBlockMeter {
  readonly #clock: NodeClock;
  readonly #log: Logger;
  readonly #periodMs: number;
  readonly #toleranceMs: number;
  readonly #reportMs: number;
  #timer: Timer | null = null;
  #lastBeatAt = 0;
  /** Blocks recorded up to #lastBeatAt. */
  #blockedMs = 0;

  constructor(clock: NodeClock, log: Logger, options: LoopBlockMeterOptions = {}) {
    this.#clock = clock;
    this.#log = log;
    this.#periodMs = options.periodMs ?? 100;
    this.#toleranceMs = options.toleranceMs ?? 100;
    this.#reportMs = options.reportMs ?? 1000;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#lastBeatAt = this.#clock.now();
    // Not what keeps a process up: it measures, it does no work.
    this.#timer = this.#clock.setInterval(() => this.#beat(), this.#periodMs, { keepAlive: false });
  }

  close(): void {
    if (this.#timer === null) return;
    this.#blockedMs += this.#overdue(this.#clock.now());
    this.#timer.cancel();
    this.#timer = null;
  }

  /**
   * Milliseconds the loop was held since start(), the block that ends now included; never
   * decreases. 0 while the meter is not running: without beats there is nothing to tell a
   * held loop from a free one, and a reader then judges as if the loop were always free.
   */
  blockedMs(): number {
    if (this.#timer === null) return this.#blockedMs;
    return this.#blockedMs + this.#overdue(this.#clock.now());
  }

  #overdue(now: number): number {
    const late = now - this.#lastBeatAt - this.#periodMs;
    return late > this.#toleranceMs ? late : 0;
  }

  #beat(): void {
    const now = this.#clock.now();
    const block = this.#overdue(now);
    this.#blockedMs += block;
    this.#lastBeatAt = now;
    if (block >= this.#reportMs)
      this.#log.warn(
        { blockedMs: Math.round(block) },
        'the event loop was held: time a disk write or a keepalive could not be seen is not held against it',
      );
  }
}
