/**
 * Posts alert events to a webhook, one at a time and in order, with a timeout per attempt
 * and bounded retries. Fire and forget for the caller: `post()` never throws and never
 * waits; a receiver that is down delays the queue, which is bounded (oldest dropped first).
 *
 * Retried: network errors, timeouts, 408, 429 and 5xx. Not retried: other 4xx (the
 * receiver refuses the payload; sending it again will not help).
 */

export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<{ readonly status: number }>;

export interface WebhookOptions {
  readonly url: string;
  /** Injected in tests; the global fetch by default. */
  readonly fetch?: FetchLike;
  readonly headers?: Readonly<Record<string, string>>;
  /** Per attempt (default 5000 ms). */
  readonly timeoutMs?: number;
  /** Attempts per event, the first included (default 4). */
  readonly maxAttempts?: number;
  /** Wait before the second attempt; doubles each time, at most 30 s (default 500 ms). */
  readonly backoffMs?: number;
  /** Events waiting beyond this are dropped, oldest first (default 1000). */
  readonly maxQueue?: number;
  /** Injected in tests. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** One call per event once it is delivered or given up on (for logs and metrics). */
  readonly onResult?: (result: DeliveryResult) => void;
}

export type DeliveryResult =
  | { readonly ok: true; readonly attempts: number; readonly status: number }
  | { readonly ok: false; readonly attempts: number; readonly status: number | null; readonly error: string };

export interface WebhookStats {
  readonly delivered: number;
  readonly failed: number;
  readonly dropped: number;
  readonly queued: number;
}

export class WebhookPoster {
  #queue: string[] = [];
  #running = false;
  #closed = false;
  #idle: (() => void)[] = [];
  readonly #abort = new AbortController();
  #stats = { delivered: 0, failed: 0, dropped: 0 };
  readonly #fetch: FetchLike;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: WebhookOptions) {
    this.#fetch = options.fetch ?? ((url, init) => fetch(url, init));
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms).unref()));
  }

  /** Queues one payload (JSON-encoded now, so later changes to it do not leak in). */
  post(payload: unknown): void {
    if (this.#closed) return;
    this.#queue.push(JSON.stringify(payload));
    const max = this.options.maxQueue ?? 1000;
    while (this.#queue.length > max) {
      this.#queue.shift();
      this.#stats.dropped++;
    }
    if (!this.#running) void this.#drain();
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  stats(): WebhookStats {
    return { ...this.#stats, queued: this.#queue.length };
  }

  /** Drops what is queued and aborts the attempt in flight. */
  close(): void {
    this.#closed = true;
    this.#stats.dropped += this.#queue.length;
    this.#queue = [];
    this.#abort.abort();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      for (let body = this.#queue.shift(); body !== undefined && !this.#closed; body = this.#queue.shift()) {
        const result = await this.#deliver(body);
        if (result.ok) this.#stats.delivered++;
        else this.#stats.failed++;
        this.options.onResult?.(result);
      }
    } finally {
      this.#running = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #deliver(body: string): Promise<DeliveryResult> {
    const attempts = Math.max(1, this.options.maxAttempts ?? 4);
    const timeoutMs = this.options.timeoutMs ?? 5000;
    let backoff = this.options.backoffMs ?? 500;
    let last: { status: number | null; error: string } = { status: null, error: 'not attempted' };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.#closed) break;
      try {
        const res = await this.#fetch(this.options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...this.options.headers },
          body,
          signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(timeoutMs)]),
        });
        if (res.status >= 200 && res.status < 300) return { ok: true, attempts: attempt, status: res.status };
        last = { status: res.status, error: `HTTP ${res.status}` };
        const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
        if (!retryable) return { ok: false, attempts: attempt, ...last };
      } catch (err) {
        last = { status: null, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
      }
      if (attempt < attempts && !this.#closed) {
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
    return { ok: false, attempts, ...last };
  }
}
