/** Waiting in the SDK: retry and keepalive delays spread by jitter, and a sleep that `close()` cuts short. */

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** `ms` spread by ±`spread` (0.2 = ±20 %), using the injected random source. */
export function jitter(ms: number, spread: number, random: () => number): number {
  return Math.max(0, Math.round(ms * (1 - spread + 2 * spread * random())));
}
