/**
 * Waiting for the leader to change: work with no leader to go to (or one not connected
 * yet) waits here rather than polling, and goes the moment there is one. Woken on a leader
 * change, a peer connection coming up, a new leader taking up its duties, and on close.
 */
import type { NodeClock } from './clock.js';

export class LeaderChangeWaiters {
  private readonly waiters = new Set<() => void>();

  constructor(private readonly clock: NodeClock) {}

  /** Resolves on the next wake(), or after `ms` (at least 1), whichever is first. */
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        timer.cancel();
        this.waiters.delete(done);
        resolve();
      };
      const timer = this.clock.setTimeout(done, Math.max(1, ms), { keepAlive: false });
      this.waiters.add(done);
    });
  }

  /** The leader or a peer connection may have changed: every waiter looks again. */
  wake(): void {
    if (this.waiters.size === 0) return;
    for (const w of [...this.waiters]) w();
  }
}
