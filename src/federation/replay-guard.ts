/**
 * Refuses a message seen before from the same sender, by (boot, seq): the sender's process
 * incarnation and its per-process sequence number. Gossip travels as independent messages
 * that may be reordered, so instead of "strictly increasing" this keeps a sliding window of
 * the last `WINDOW` sequence numbers (as IPsec's anti-replay window does): anything newer
 * than the highest is fresh, anything inside the window is fresh once, anything older is
 * refused. A new boot (a restarted sender, whose incarnation only grows) starts a new window.
 *
 * `accepts` and `commit` are separate so that a message refused for any later reason leaves
 * the guard untouched.
 */
const WINDOW = 1_024;

interface SenderWindow {
  boot: number;
  highest: number;
  seen: Set<number>;
  lastUsed: number;
}

export class ReplayGuard {
  private readonly senders = new Map<string, SenderWindow>();

  accepts(sender: string, boot: number, seq: number): boolean {
    const w = this.senders.get(sender);
    if (w === undefined || boot > w.boot) return true;
    if (boot < w.boot) return false;
    if (seq > w.highest) return true;
    return seq > w.highest - WINDOW && !w.seen.has(seq);
  }

  commit(sender: string, boot: number, seq: number, now: number): void {
    let w = this.senders.get(sender);
    if (w === undefined || boot > w.boot) {
      w = { boot, highest: seq, seen: new Set(), lastUsed: now };
      this.senders.set(sender, w);
    }
    w.seen.add(seq);
    w.lastUsed = now;
    if (seq > w.highest) w.highest = seq;
    if (w.seen.size > 2 * WINDOW) for (const s of w.seen) if (s <= w.highest - WINDOW) w.seen.delete(s);
  }

  /** The boot of the sender's newest process we heard from, if we did (and have not forgotten it). */
  bootOf(sender: string): number | undefined {
    return this.senders.get(sender)?.boot;
  }

  /**
   * Drops senders idle for `idleMs`. Safe once `idleMs` exceeds the timestamp window (plus
   * skew): every message of theirs we could be replayed is then refused as stale anyway.
   */
  forgetIdle(now: number, idleMs: number): void {
    for (const [sender, w] of this.senders) if (now - w.lastUsed > idleMs) this.senders.delete(sender);
  }

  size(): number {
    return this.senders.size;
  }
}
