/**
 * Time for the node, in two kinds that must not be mixed:
 *
 * - `now()`: monotonic milliseconds (`performance.now()`: never steps, whatever NTP or an
 *   operator does to the wall clock). Every deadline, timeout, TTL and interval the node
 *   keeps is measured with it: a session's deadline, a request's time left, the expiry
 *   protection's window, health hysteresis.
 * - `wallNow()`: milliseconds since the epoch (`Date.now()`). For display (last contact,
 *   when a report arrived) and for the times a leader stamps on replicated commands
 *   (`openedAt`, `suspectSince`), which other nodes read and which must therefore mean the
 *   same thing in every process.
 *
 * Stepping the wall clock by minutes must never expire a session that is kept alive, nor
 * keep one alive past its TTL (test/cluster-clock-step.test.ts, under libfaketime).
 */
export interface Clock {
  /** Monotonic milliseconds; only differences mean anything. */
  now(): number;
  /** Wall-clock milliseconds since the epoch. */
  wallNow(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/** A monotonic instant `t` (from the same clock) shown as wall-clock time. */
export function toWall(clock: Clock, t: number): number {
  return Math.round(clock.wallNow() - (clock.now() - t));
}
