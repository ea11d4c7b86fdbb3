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
 *
 * Node logic also waits on it (NodeClock: timers run on the monotonic clock), so a test can
 * drive deadlines, retries and the leader's periodic duties with virtual time
 * (ManualClock, src/node/manual-clock.ts) instead of sleeping.
 */
export interface Clock {
  /** Monotonic milliseconds; only differences mean anything. */
  now(): number;
  /** Wall-clock milliseconds since the epoch. */
  wallNow(): number;
}

/** A callback waiting on a clock; cancel() may be called more than once, and after it ran. */
export interface Timer {
  cancel(): void;
}

export interface TimerOptions {
  /**
   * Whether a pending timer keeps the process alive (Node's ref/unref); default true. A
   * short wait before looking again is `false`: it must never be what holds a process up.
   */
  readonly keepAlive?: boolean;
}

/** Time and timers: what node logic reads the time with and waits on. */
export interface NodeClock extends Clock {
  /** Calls `fn` once, `ms` milliseconds from now. */
  setTimeout(fn: () => void, ms: number, options?: TimerOptions): Timer;
  /** Calls `fn` every `ms` milliseconds until cancelled. */
  setInterval(fn: () => void, ms: number, options?: TimerOptions): Timer;
}

export const systemClock: NodeClock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  // The globals are looked up at each call, so vitest's fake timers still reach them.
  setTimeout: (fn, ms, options) => nodeTimer(setTimeout(fn, ms), clearTimeout, options),
  setInterval: (fn, ms, options) => nodeTimer(setInterval(fn, ms), clearInterval, options),
};

function nodeTimer(handle: NodeJS.Timeout, clear: (h: NodeJS.Timeout) => void, options?: TimerOptions): Timer {
  if (options?.keepAlive === false) handle.unref();
  return { cancel: () => clear(handle) };
}

/** Resolves after `ms` (at least 1) on `clock`; never keeps the process alive. */
export function sleep(clock: NodeClock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimeout(resolve, Math.max(1, ms), { keepAlive: false });
  });
}

/** A monotonic instant `t` (from the same clock) shown as wall-clock time. */
export function toWall(clock: Clock, t: number): number {
  return Math.round(clock.wallNow() - (clock.now() - t));
}
