/**
 * Load shedding (src/server/overload.ts): which requests are refused, with what, and when
 * the node stops shedding. The lag is fed by hand (no wall-clock windows).
 */
import Fastify from 'fastify';
import { describe, expect, it, vi } from 'vitest';
import { LoadShedder, neverShed, registerLoadShedding } from '../src/server/overload.js';

function shedder(pending = () => 0) {
  return new LoadShedder(
    { maxLagMs: 200, maxPendingWork: 100, maxInflight: 0, retryAfterSeconds: 2 },
    { pendingWork: pending },
  );
}

describe('LoadShedder', () => {
  it('sheds once the lag passes the limit and stops only when it is back under half of it', () => {
    const s = shedder();
    s.observeLag(150);
    expect(s.check()).toBeNull();
    s.observeLag(250);
    expect(s.check()).toEqual({ kind: 'lag', lagMs: 250 });
    s.observeLag(150); // under the limit, not yet under half: still shedding (no flapping)
    expect(s.check()?.kind).toBe('lag');
    s.observeLag(90);
    expect(s.check()).toBeNull();
  });

  it('sheds within one long turn of the event loop, once the sampling timer is overdue past the limit', () => {
    vi.useFakeTimers();
    try {
      let now = 1000;
      const s = new LoadShedder(
        { maxLagMs: 200, maxPendingWork: 0, maxInflight: 0, retryAfterSeconds: 1, sampleMs: 20 },
        { pendingWork: () => 0 },
        () => now,
      );
      s.start();
      // The timer has not fired (the loop is busy serving readable sockets), and time goes on.
      now += 20 + 150;
      expect(s.check()).toBeNull();
      now += 100; // 250 ms overdue
      expect(s.check()).toEqual({ kind: 'lag', lagMs: 250 });
      // The turn ends and the timer fires late: still shedding until a sample is under half.
      vi.advanceTimersByTime(20);
      expect(s.check()?.kind).toBe('lag');
      vi.advanceTimersByTime(20); // on time now
      expect(s.check()).toBeNull();
      s.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('sheds while more work waits than the limit allows', () => {
    let pending = 100;
    const s = shedder(() => pending);
    expect(s.check()).toBeNull();
    pending = 101;
    expect(s.check()).toEqual({ kind: 'pending', pending: 101 });
  });

  it('never sheds the probes or keepalives', () => {
    expect(neverShed('GET', '/healthz')).toBe(true);
    expect(neverShed('GET', '/readyz?verbose=1')).toBe(true);
    expect(neverShed('PUT', '/v1/sessions/s-1/keepalive')).toBe(true);
    expect(neverShed('DELETE', '/v1/sessions/s-1')).toBe(false);
    expect(neverShed('GET', '/v1/namespaces/prod/services/a/instances')).toBe(false);
  });
});

describe('the shedding hook', () => {
  it('answers 503 OVERLOADED with Retry-After in the catalogue shape, before the handler runs; probes and keepalives pass', async () => {
    const s = shedder();
    const app = Fastify();
    let handled = 0;
    registerLoadShedding(app, s);
    app.get('/healthz', async () => ({ ok: true }));
    app.put('/v1/sessions/:id/keepalive', async () => ({ ok: true }));
    app.put('/v1/namespaces/:ns/services/:svc/instances/:id', async () => {
      handled++;
      return { ok: true };
    });
    const write = () =>
      app.inject({
        method: 'PUT',
        url: '/v1/namespaces/p/services/s/instances/i',
        payload: { address: '10.0.0.1', port: 1 },
      });
    expect((await write()).statusCode).toBe(200);
    s.observeLag(500);
    const shed = await write();
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['retry-after']).toBe('2');
    expect(shed.json()).toEqual({
      error: { code: 'OVERLOADED', message: expect.stringContaining('--max-event-loop-lag-ms') },
    });
    expect(handled).toBe(1); // the shed write did nothing
    expect(s.shed).toBe(1);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'PUT', url: '/v1/sessions/s1/keepalive' })).statusCode).toBe(200);
    s.observeLag(10);
    expect((await write()).statusCode).toBe(200);
    await app.close();
  });
});
