/**
 * The disk-stall rule of the Ready loop: a disk write counts as stalled only for the time
 * it was outstanding while the event loop was free to see it finish. Time the loop was
 * held (LoopBlockMeter: ~32 s of synchronous registry decoding at a restart with a million
 * instances, a long synchronous apply, snapshot preparation on the leader) is the loop's,
 * not the disk's: the write may have finished at its start, its callback waiting behind the
 * turn that would not end. And the time the loop spends applying, installing a snapshot or
 * doing anything else that is not waiting on a write is not counted at all: only writes are
 * tracked.
 *
 * Pure bookkeeping: the clock and the loop's blocked total are read, nothing is scheduled.
 */
import type { Clock } from './clock.js';

interface DiskWait {
  /** When the write started (monotonic). */
  readonly startedAt: number;
  /** The loop's blocked total then (LoopBlockMeter.blockedMs). */
  readonly blockedAtStart: number;
}

export class DiskWaits {
  readonly #waits = new Set<DiskWait>();

  constructor(
    private readonly clock: Clock,
    private readonly loopBlockedMs: () => number,
  ) {}

  /** Runs a disk write, counted as outstanding until it settles (either way). */
  async track<T>(write: () => Promise<T>): Promise<T> {
    const wait: DiskWait = { startedAt: this.clock.now(), blockedAtStart: this.loopBlockedMs() };
    this.#waits.add(wait);
    try {
      return await write();
    } finally {
      this.#waits.delete(wait);
    }
  }

  /** Whether any write is outstanding. */
  get pending(): boolean {
    return this.#waits.size > 0;
  }

  /**
   * How long the oldest outstanding write has waited with the loop free to see it finish:
   * its time outstanding minus the time the loop was held meanwhile; 0 when none is.
   */
  stalledMs(): number {
    if (this.#waits.size === 0) return 0;
    const now = this.clock.now();
    const blocked = this.loopBlockedMs();
    let longest = 0;
    for (const w of this.#waits) longest = Math.max(longest, now - w.startedAt - (blocked - w.blockedAtStart));
    return longest;
  }
}
