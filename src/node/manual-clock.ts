/**
 * Virtual time for node logic (the node's test kit, as raft/sim is the core's): a NodeClock
 * whose time moves only when a test says so. Timers due by then run in (time, order
 * scheduled) order, so a run is a pure function of its inputs.
 *
 * @example
 * const clock = new ManualClock();
 * const duties = new LeaderDuties({ ...deps, clock });
 * clock.advance(1_000); // every timer due in the next second runs, in order
 */
import { EventQueue } from '../../raft/sim/event-queue.js';
import type { NodeClock, Timer } from './clock.js';

/** Wall-clock time at virtual time 0 (any fixed instant will do). */
const EPOCH_MS = Date.UTC(2026, 0, 1);

export class ManualClock implements NodeClock {
  private readonly queue = new EventQueue();
  /** The end of the latest block(): timers due before it run at it, late. */
  private blockedUntil = 0;

  constructor(private readonly epochMs = EPOCH_MS) {}

  now(): number {
    return this.queue.now;
  }

  wallNow(): number {
    return this.epochMs + this.queue.now;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    let cancelled = false;
    this.queue.schedule(Math.max(0, ms), () => {
      this.runLate();
      if (!cancelled) fn();
    });
    return {
      cancel: () => {
        cancelled = true;
      },
    };
  }

  setInterval(fn: () => void, ms: number): Timer {
    // A zero period would never let time move on.
    const period = Math.max(1, ms);
    let cancelled = false;
    const run = (): void => {
      this.runLate();
      if (cancelled) return;
      this.queue.schedule(period, run);
      fn();
    };
    this.queue.schedule(period, run);
    return {
      cancel: () => {
        cancelled = true;
      },
    };
  }

  /** Moves time on by `ms`, running every timer due meanwhile (those they schedule too). */
  advance(ms: number): void {
    const until = this.queue.now + ms;
    while (this.queue.runNext(until)) {}
    this.queue.now = until;
  }

  /**
   * Moves time on by `ms` and runs nothing, as when the event loop is held (a long
   * synchronous decode or apply): the timers due meanwhile run at the next advance(), late,
   * at the time the block ended, in the order they were due, each once (an interval then
   * goes on from there), as Node runs them.
   */
  block(ms: number): void {
    this.queue.now += Math.max(0, ms);
    this.blockedUntil = this.queue.now;
  }

  /** A timer due during a block runs when it ended: time never goes back for it, nor for what it schedules. */
  private runLate(): void {
    if (this.queue.now < this.blockedUntil) this.queue.now = this.blockedUntil;
  }
}
