/**
 * The probe listener's published state (src/server/probes): the main thread's heartbeat and
 * readiness, and how the listener judges them, on fake timers. A stalled main loop is a
 * clock that moves while the timers do not fire.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, resolveConfig } from '../src/server/config.js';
import { ProbePublisher } from '../src/server/probes/publisher.js';
import {
  answerProbe,
  HeartbeatCell,
  judgeLiveness,
  judgeReadiness,
  type ProbeAnswer,
  type ProbeView,
  type PublishedReadiness,
  refusedRequestAnswer,
} from '../src/server/probes/state.js';

const READY: ProbeAnswer = {
  status: 200,
  body: {
    ready: true,
    node: 'n1',
    leader: 'n2',
    role: 'follower',
    term: 3,
    commitIndex: 40,
    appliedIndex: 40,
    lag: 0,
    reasons: [],
  },
};

describe('the published state, on fake timers', () => {
  let cell: HeartbeatCell;
  let published: PublishedReadiness | null;
  let evaluate: () => Promise<ProbeAnswer>;
  let errors: unknown[];
  let publisher: ProbePublisher;

  beforeEach(() => {
    vi.useFakeTimers();
    cell = new HeartbeatCell(new SharedArrayBuffer(HeartbeatCell.BYTES));
    published = null;
    evaluate = async () => READY;
    errors = [];
    publisher = new ProbePublisher({
      heartbeat: cell,
      clock: () => Date.now(),
      evaluate: () => evaluate(),
      publish: (r) => (published = r),
      onEvaluateError: (err) => errors.push(err),
      heartbeatMs: 25,
      readinessEveryMs: 300,
    });
  });

  afterEach(() => {
    publisher.stop();
    vi.useRealTimers();
  });

  /** The main loop holds for `ms`: time passes, no timer fires. */
  const stall = (ms: number) => vi.setSystemTime(Date.now() + ms);
  const health = () => judgeLiveness('n1', cell.lastBeatMs(), Date.now(), 5000);
  const ready = () => judgeReadiness('n1', published, Date.now(), 3000);

  it('a fresh heartbeat is 200 with the main port body; one older than the stall limit is 503 STALLED with the stall', async () => {
    publisher.start();
    expect(cell.lastBeatMs()).toBe(Date.now()); // beat at once: the listener never sees an empty cell
    await vi.advanceTimersByTimeAsync(1000);
    expect(health()).toEqual({ status: 200, body: { ok: true, node: 'n1' } });

    stall(4000); // busy, not hung: under the limit
    expect(health().status).toBe(200);
    stall(2000);
    const hung = health();
    expect(hung.status).toBe(503);
    expect(hung.body).toMatchObject({
      error: { code: 'STALLED', stalledMs: 6000, stallLimitMs: 5000 },
      ok: false,
      node: 'n1',
    });
    expect((hung.body.error as { message: string }).message).toContain('6000 ms');

    // The loop comes round again: the next beat makes it healthy.
    await vi.advanceTimersByTimeAsync(25);
    expect(health().status).toBe(200);
  });

  it('publishes the readiness check with its time; a stale one is 503 NOT_READY with the last known fields', async () => {
    expect(ready()).toMatchObject({
      status: 503,
      body: {
        error: { code: 'NOT_READY' },
        ready: false,
        node: 'n1',
        role: 'unknown',
        reasons: [expect.stringContaining('not been checked yet')],
      },
    });
    publisher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(ready()).toEqual({ status: 200, body: READY.body });
    expect(published?.at).toBe(Date.now());

    // Checked again every 300 ms while the loop runs: never stale.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(ready().status).toBe(200);
    expect(Date.now() - published!.at).toBeLessThanOrEqual(300);

    stall(3500);
    const stale = ready();
    expect(stale.status).toBe(503);
    expect(stale.body).toMatchObject({
      error: { code: 'NOT_READY' },
      ready: false,
      node: 'n1',
      leader: 'n2',
      role: 'follower',
      term: 3,
      commitIndex: 40,
      appliedIndex: 40,
      lag: 0,
    });
    expect(stale.body.reasons).toEqual([expect.stringMatching(/last checked \d+ ms ago \(limit 3000 ms\)/)]);
  });

  it('a check that never finishes leaves the last value to go stale; the next ones wait for it', async () => {
    let calls = 0;
    evaluate = async () => {
      calls++;
      return calls === 1 ? READY : new Promise<ProbeAnswer>(() => {});
    };
    publisher.start();
    await vi.advanceTimersByTimeAsync(300);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(2000);
    expect(ready().status).toBe(200);
    await vi.advanceTimersByTimeAsync(1500);
    expect(calls).toBe(2); // one check at a time
    expect(ready().status).toBe(503);
    expect(health().status).toBe(200); // the loop itself runs: alive, not ready
  });

  it('a check that throws is reported, publishes nothing, and is tried again', async () => {
    let calls = 0;
    evaluate = async () => {
      calls++;
      if (calls <= 2) throw new Error('bug in the check');
      return READY;
    };
    publisher.start();
    await vi.advanceTimersByTimeAsync(300);
    expect(errors).toHaveLength(2);
    expect(published).toBeNull();
    await vi.advanceTimersByTimeAsync(300);
    expect(ready().status).toBe(200);
  });

  it('a not-ready answer is published as it is', async () => {
    const notReady: ProbeAnswer = {
      status: 503,
      body: {
        error: { code: 'NOT_READY', message: 'not ready: no leader' },
        ready: false,
        node: 'n1',
        reasons: ['no leader'],
      },
    };
    evaluate = async () => notReady;
    publisher.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(ready()).toEqual({ status: 503, body: notReady.body });
  });

  it('stop() clears both timers, and a check in flight then publishes nothing', async () => {
    let finish: (a: ProbeAnswer) => void = () => {};
    evaluate = () => new Promise<ProbeAnswer>((resolve) => (finish = resolve));
    publisher.start();
    publisher.stop();
    expect(vi.getTimerCount()).toBe(0);
    const beat = cell.lastBeatMs();
    finish(READY);
    await vi.advanceTimersByTimeAsync(1000);
    expect(published).toBeNull();
    expect(cell.lastBeatMs()).toBe(beat);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('the probe listener routes', () => {
  const view: ProbeView = {
    nodeId: 'n1',
    lastBeatMs: 1000,
    readiness: { at: 1000, ...READY },
    nowMs: 1010,
    stallLimitMs: 5000,
    readinessStaleMs: 3000,
  };

  it('serves GET and HEAD /healthz and /readyz, query strings ignored', () => {
    expect(answerProbe('GET', '/healthz', view)).toEqual({ status: 200, body: { ok: true, node: 'n1' } });
    expect(answerProbe('HEAD', '/healthz?verbose=1', view).status).toBe(200);
    expect(answerProbe('GET', '/readyz', view)).toEqual({ status: 200, body: READY.body });
  });

  it('answers anything else 404 ROUTE_NOT_FOUND in the catalogue shape', () => {
    for (const [method, url] of [
      ['POST', '/healthz'],
      ['GET', '/metrics'],
      ['GET', '/'],
      ['DELETE', '/readyz'],
    ] as const) {
      const a = answerProbe(method, url, view);
      expect(a.status).toBe(404);
      expect(a.body).toEqual({
        error: { code: 'ROUTE_NOT_FOUND', message: expect.stringContaining(`no route ${method} ${url}`) },
      });
    }
  });

  it('answers what the HTTP parser refuses with the catalogue code the main port uses', () => {
    expect(refusedRequestAnswer('HPE_INVALID_METHOD')).toMatchObject({
      status: 400,
      body: { error: { code: 'MALFORMED_REQUEST' } },
    });
    expect(refusedRequestAnswer('HPE_HEADER_OVERFLOW')).toMatchObject({
      status: 431,
      body: { error: { code: 'HEADERS_TOO_LARGE' } },
    });
    expect(refusedRequestAnswer('ERR_HTTP_REQUEST_TIMEOUT')).toMatchObject({
      status: 408,
      body: { error: { code: 'REQUEST_TIMEOUT' } },
    });
  });
});

describe('the probe flags', () => {
  const BASE = {
    id: 'n1',
    data: '/tmp/x',
    listen: '127.0.0.1:8101',
    peers: 'n1=127.0.0.1:7101',
    'cluster-secret': 'local-secret',
  };

  it('off by default, with the 5-s stall limit', () => {
    const c = resolveConfig(BASE, {});
    expect(c.probeListen).toBeNull();
    expect(c.probeStallLimitMs).toBe(5000);
  });

  it('from flags and from the environment', () => {
    expect(
      resolveConfig({ ...BASE, 'probe-listen': '0.0.0.0:8701', 'probe-stall-limit-ms': '2000' }, {}),
    ).toMatchObject({ probeListen: { host: '0.0.0.0', port: 8701 }, probeStallLimitMs: 2000 });
    expect(
      resolveConfig(BASE, { ROLLCALL_PROBE_LISTEN: '127.0.0.1:8702', ROLLCALL_PROBE_STALL_LIMIT_MS: '300' }),
    ).toMatchObject({ probeListen: { host: '127.0.0.1', port: 8702 }, probeStallLimitMs: 300 });
  });

  it('refuses a bad address or limit, naming the flag', () => {
    expect(() => resolveConfig({ ...BASE, 'probe-listen': 'nowhere' }, {})).toThrow(ConfigError);
    expect(() => resolveConfig({ ...BASE, 'probe-listen': 'nowhere' }, {})).toThrow(/--probe-listen/);
    expect(() => resolveConfig({ ...BASE, 'probe-stall-limit-ms': '50' }, {})).toThrow(/--probe-stall-limit-ms/);
  });
});
