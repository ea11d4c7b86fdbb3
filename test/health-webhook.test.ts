/** The webhook poster: in order, bounded retries with backoff, a timeout per attempt, a bounded queue. */
import { describe, expect, it } from 'vitest';
import type { DeliveryResult, FetchLike } from '../src/health/index.js';
import { WebhookPoster } from '../src/health/index.js';

function recorder(statuses: (number | 'error' | 'hang')[]) {
  const calls: { body: unknown; headers: Record<string, string> }[] = [];
  const fetch: FetchLike = (_url, init) => {
    calls.push({ body: JSON.parse(init.body), headers: init.headers });
    const s = statuses.shift() ?? 200;
    if (s === 'error') return Promise.reject(new Error('ECONNREFUSED'));
    if (s === 'hang')
      return new Promise((_, reject) =>
        init.signal.addEventListener('abort', () => reject(init.signal.reason as Error)),
      );
    return Promise.resolve({ status: s });
  };
  return { calls, fetch };
}

describe('WebhookPoster', () => {
  it('posts JSON in order', async () => {
    const { calls, fetch } = recorder([]);
    const w = new WebhookPoster({ url: 'http://127.0.0.1:1/hook', fetch, headers: { 'x-team': 'ops' } });
    w.post({ n: 1 });
    w.post({ n: 2 });
    await w.idle();
    expect(calls.map((c) => c.body)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(calls[0]!.headers).toMatchObject({ 'content-type': 'application/json', 'x-team': 'ops' });
    expect(w.stats()).toEqual({ delivered: 2, failed: 0, dropped: 0, queued: 0 });
  });

  it('retries network errors and 5xx with doubling backoff, then succeeds', async () => {
    const { calls, fetch } = recorder(['error', 503, 200]);
    const sleeps: number[] = [];
    const results: DeliveryResult[] = [];
    const w = new WebhookPoster({
      url: 'http://x/',
      fetch,
      backoffMs: 100,
      sleep: async (ms) => void sleeps.push(ms),
      onResult: (r) => results.push(r),
    });
    w.post({ n: 1 });
    await w.idle();
    expect(calls).toHaveLength(3);
    expect(sleeps).toEqual([100, 200]);
    expect(results).toEqual([{ ok: true, attempts: 3, status: 200 }]);
  });

  it('gives up after maxAttempts, and does not retry a 4xx refusal', async () => {
    const { calls, fetch } = recorder([500, 500, 500, 400]);
    const results: DeliveryResult[] = [];
    const w = new WebhookPoster({
      url: 'http://x/',
      fetch,
      maxAttempts: 3,
      sleep: async () => {},
      onResult: (r) => results.push(r),
    });
    w.post({ n: 1 });
    w.post({ n: 2 });
    await w.idle();
    expect(calls).toHaveLength(4);
    expect(results).toEqual([
      { ok: false, attempts: 3, status: 500, error: 'HTTP 500' },
      { ok: false, attempts: 1, status: 400, error: 'HTTP 400' },
    ]);
    expect(w.stats().failed).toBe(2);
  });

  it('times out an attempt that hangs', async () => {
    const { fetch } = recorder(['hang', 200]);
    const results: DeliveryResult[] = [];
    const w = new WebhookPoster({
      url: 'http://x/',
      fetch,
      timeoutMs: 30,
      sleep: async () => {},
      onResult: (r) => results.push(r),
    });
    w.post({ n: 1 });
    await w.idle();
    expect(results).toEqual([{ ok: true, attempts: 2, status: 200 }]);
  });

  it('drops the oldest events beyond maxQueue, and everything on close', async () => {
    const { calls, fetch } = recorder(['hang']);
    const w = new WebhookPoster({ url: 'http://x/', fetch, maxQueue: 2, timeoutMs: 60_000, maxAttempts: 1 });
    for (let n = 1; n <= 5; n++) w.post({ n }); // 1 in flight, 2..5 queued: 2 and 3 dropped
    expect(w.stats()).toMatchObject({ dropped: 2, queued: 2 });
    w.close();
    await w.idle();
    expect(calls.map((c) => c.body)).toEqual([{ n: 1 }]);
    expect(w.stats()).toMatchObject({ dropped: 4, queued: 0 });
    w.post({ n: 6 }); // after close: ignored
    expect(w.stats().queued).toBe(0);
  });
});
