export interface BackoffOptions {
  /** First retry delay before jitter. */
  readonly initialMs: number;
  /** Ceiling for the (pre-jitter) delay. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 50, maxMs: 2_000 };

/**
 * Exponential backoff with "equal jitter": the delay is uniformly drawn from
 * [d/2, d] where d doubles per attempt up to the cap. Jitter keeps the nodes of a
 * restarted cluster from redialing in lockstep; the d/2 floor keeps a dead peer from
 * being hammered by unlucky near-zero draws.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const ceiling = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  reset(): void {
    this.attempt = 0;
  }
}
