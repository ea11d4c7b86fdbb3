/**
 * The sessions workload without a cluster: the rule that tells a false expiry from one the
 * owner earned (scripts/lin/session-judge.ts), the owners' pacing that rule relies on, and
 * an owner against a scripted node on loopback that forgets a session it had just
 * confirmed (a false expiry, reported with what happened and when) or that keeps it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { caseForSeed } from '../scripts/lin/case.js';
import { ClusterView } from '../scripts/lin/cluster-view.js';
import { fatalLine } from '../scripts/lin/lin-cluster.js';
import type { FaultRecord } from '../scripts/lin/nemesis.js';
import { noMajority } from '../scripts/lin/run.js';
import { type ExpirySignal, type JudgeInput, judgeExpiry } from '../scripts/lin/session-judge.js';
import { type OwnerPlan, pacing } from '../scripts/lin/session-owner.js';
import { SessionsWorkload } from '../scripts/lin/sessions.js';
import type { LocalCluster } from '../scripts/local-cluster.js';

const TTL = 3000;
const signal = (sent: number, answered = sent + 5): ExpirySignal => ({
  kind: 'keepalive-not-found',
  node: 'n2',
  sent,
  answered,
  detail: '404 SESSION_NOT_FOUND',
});
/** Attempts every `every` ms from `from` to `to`. */
const sendsEvery = (from: number, to: number, every: number) =>
  Array.from({ length: Math.floor((to - from) / every) + 1 }, (_, i) => from + i * every);
const judge = (over: Partial<JudgeInput>) =>
  judgeExpiry({
    ttlMs: TTL,
    confirmations: [{ sent: 0, answered: 10 }],
    sends: [0],
    signal: signal(1000),
    noMajority: [],
    maxSendGapMs: TTL / 2,
    ...over,
  });

describe('judging an expiry', () => {
  it('is false when the last confirmed keepalive was sent less than a TTL before the answer', () => {
    const j = judge({
      confirmations: [
        { sent: 0, answered: 10 },
        { sent: 700, answered: 705 },
      ],
      sends: sendsEvery(0, 1400, 700),
      signal: signal(1400),
    });
    expect(j.kind).toBe('false');
    expect(j.lastConfirmed).toEqual({ sent: 700, answered: 705 });
    expect(j.reason).toMatch(/never missed its TTL/);
  });

  it('is false after a TTL without confirmation when the owner kept sending and a majority was up', () => {
    const j = judge({ sends: sendsEvery(0, 4000, 500), signal: signal(4000) });
    expect(j.kind).toBe('false');
    expect(j.longestSendGapMs).toBe(500);
    expect(j.reason).toMatch(/kept sending.*majority of the cluster was up/);
  });

  it('is legitimate when the owner itself stopped sending for more than its allowed gap', () => {
    const j = judge({ sends: [0, 500, 3600], signal: signal(3600) });
    expect(j.kind).toBe('legitimate');
    expect(j.reason).toMatch(/sent no keepalive for 3100 ms/);
  });

  it('is legitimate when no majority was up for longer than the TTL, not for a shorter outage', () => {
    const sends = sendsEvery(0, 5000, 400);
    expect(judge({ sends, signal: signal(5000), noMajority: [{ start: 500, end: 4000 }] }).kind).toBe('legitimate');
    expect(judge({ sends, signal: signal(5000), noMajority: [{ start: 500, end: 2000 }] }).kind).toBe('false');
    // An outage that ended before the last confirmation excuses nothing.
    const later = [
      { sent: 0, answered: 10 },
      { sent: 4200, answered: 4210 },
    ];
    expect(
      judge({
        confirmations: later,
        sends: sendsEvery(0, 8000, 400),
        signal: signal(8000),
        noMajority: [{ start: 100, end: 4100 }],
      }).kind,
    ).toBe('false');
  });

  it('counts the time from the last attempt to a read that found the instance gone as a gap in sending', () => {
    const read: ExpirySignal = {
      kind: 'instance-missing',
      node: 'n1',
      sent: 3700,
      answered: 3705,
      detail: '404 INSTANCE_NOT_FOUND',
    };
    const stalled = judge({ confirmations: [{ sent: 500, answered: 510 }], sends: [0, 500], signal: read });
    expect(stalled).toMatchObject({ kind: 'legitimate', longestSendGapMs: 3200 });
    expect(
      judge({ confirmations: [{ sent: 600, answered: 610 }], sends: sendsEvery(0, 3600, 600), signal: read }).kind,
    ).toBe('false');
  });

  it('counts only the last confirmation before the signal: an ok after a lapse renews the promise', () => {
    // The owner lapsed (it stalled from 0 to 3500), then a leader confirmed it at 3600; an
    // expiry seen at 4000 is one decided before that ok (the old leader's pending expire).
    const j = judge({
      confirmations: [
        { sent: 0, answered: 10 },
        { sent: 3600, answered: 3610 },
      ],
      sends: [0, 3500, 3600, 4000],
      signal: signal(4000),
    });
    expect(j.kind).toBe('false');
    expect(j.lastConfirmed?.sent).toBe(3600);
  });

  it("ignores a confirmation that was still in flight when the signal's request left", () => {
    const j = judge({
      confirmations: [
        { sent: 0, answered: 10 },
        { sent: 3900, answered: 4100 },
      ],
      sends: sendsEvery(0, 4000, 500),
      signal: signal(4000, 4050),
    });
    expect(j.lastConfirmed?.sent).toBe(0);
  });
});

describe('owner pacing', () => {
  it('keeps the worst planned gap between attempts under the gap the judge allows', () => {
    for (const ttl of [2000, 2500, 3000, 3500, 4000]) {
      const p = pacing(ttl);
      const afterOk = p.intervalMs * 1.1;
      const afterFailure = p.attemptTimeoutMs + 1.5 * p.maxBackoffMs;
      expect(Math.max(afterOk, afterFailure)).toBeLessThan(p.maxSendGapMs);
      expect(p.intervalMs * 1.1 + p.attemptTimeoutMs).toBeLessThan(ttl / 2);
    }
  });

  it('cases carry 2-3 owners with TTLs of 2-4 s, the same for the same seed', () => {
    expect(caseForSeed(77).sessions).toEqual(caseForSeed(77).sessions);
    for (let s = 0; s < 30; s++) {
      const { owners } = caseForSeed(s).sessions;
      expect(owners.length).toBeGreaterThanOrEqual(2);
      expect(owners.length).toBeLessThanOrEqual(3);
      for (const o of owners) {
        expect(o.ttlMs).toBeGreaterThanOrEqual(2000);
        expect(o.ttlMs).toBeLessThanOrEqual(4000);
      }
    }
  });

  it('no majority is up during a crash, from its start to the last restart', () => {
    const log: FaultRecord[] = [
      { kind: 'kill', node: 'n1', wasLeader: true, start: 1e9, end: 2e9 },
      { kind: 'crash', node: null, wasLeader: false, start: 3e9, end: 5.5e9 },
      { kind: 'crash', node: null, wasLeader: false, start: 7e9, end: null },
    ];
    expect(noMajority(log, 9e9)).toEqual([
      { start: 3000, end: 5500 },
      { start: 7000, end: 9000 },
    ]);
  });

  it("reads a node's fatal log lines", () => {
    expect(fatalLine('{"level":60,"msg":"storage failure in the Ready loop","err":{"message":"boom"}}')).toBe(
      'storage failure in the Ready loop: boom',
    );
    expect(fatalLine('{"level":50,"msg":"x"}')).toBeNull();
    expect(fatalLine('not json')).toBeNull();
  });
});

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;
const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    ),
  );
});

async function fakeNode(handler: Handler): Promise<string> {
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => handler(req, body, res));
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function view(urls: readonly string[]): ClusterView {
  const nodes = urls.map((url, i) => ({ id: `n${i + 1}`, url, proc: null, paused: false }));
  return new ClusterView({ nodes, node: (id: string) => nodes.find((n) => n.id === id)! } as unknown as LocalCluster);
}

/** A node that keeps sessions, and forgets one on demand (as a buggy leader might). */
function sessionNode(state: { forget: Set<string>; opened: string[] }): Handler {
  return (req, body, res) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && url === '/v1/sessions') {
      const id = String(req.headers['x-rollcall-session-id']);
      state.opened.push(id);
      return json(res, 201, { id, ttlMs: JSON.parse(body).ttlMs });
    }
    const ka = /^\/v1\/sessions\/([^/]+)\/keepalive$/.exec(url);
    if (ka) {
      const id = decodeURIComponent(ka[1]!);
      if (state.forget.has(id)) return json(res, 404, { error: { code: 'SESSION_NOT_FOUND', message: 'gone' } });
      return json(res, 200, { id, ok: true, expiring: false });
    }
    if (req.method === 'PUT')
      return json(res, 200, { revision: 1, instance: { ...JSON.parse(body), health: 'healthy', version: 1 } });
    if (req.method === 'GET') return json(res, 200, { revision: 1, instance: { health: 'healthy', version: 1 } });
    if (req.method === 'DELETE') return json(res, 200, { revision: 2, deleted: 1 });
    json(res, 404, { error: { code: 'ROUTE_NOT_FOUND', message: url } });
  };
}

describe('session owners against a scripted node', () => {
  const owner = (over: Partial<OwnerPlan> = {}): OwnerPlan => ({
    ttlMs: 2000,
    r: 0,
    jitter: [0.5],
    rotateMs: null,
    stallAfter: null,
    ...over,
  });
  const plan = { owners: [owner(), owner({ r: 0.6 })] };

  it('report a keepalive answered 404 for a session just confirmed as a false expiry, then open a new session', async () => {
    const state = { forget: new Set<string>(), opened: [] as string[] };
    const urls = [await fakeNode(sessionNode(state)), await fakeNode(sessionNode(state))];
    const t0 = Date.now();
    const w = new SessionsWorkload({ view: view(urls), ns: 'lin-test', plan, now: () => Date.now() - t0 });
    await w.start();
    expect(state.opened).toEqual(['lin-test-sessions-o0-g1', 'lin-test-sessions-o1-g1']);
    await new Promise((r) => setTimeout(r, 1200)); // a keepalive or two confirmed
    state.forget.add('lin-test-sessions-o0-g1');
    await new Promise((r) => setTimeout(r, 900));
    const report = await w.finish([]);
    expect(report.falseExpiries.map((v) => v.session)).toEqual(['lin-test-sessions-o0-g1']);
    const v = report.falseExpiries[0]!;
    expect(v.signal?.kind).toBe('keepalive-not-found');
    expect(v.summary).toMatch(
      /^session lin-test-sessions-o0-g1 \(owner 0, TTL 2000 ms.*a keepalive was answered 404 SESSION_NOT_FOUND by n\d.*FALSE EXPIRY: .*never missed its TTL/,
    );
    // As the SDK does, the owner opened a new session and kept that one alive.
    expect(state.opened).toContain('lin-test-sessions-o0-g2');
    expect(
      report.sessions
        .filter((s) => s.verdict === 'alive')
        .map((s) => s.session)
        .sort(),
    ).toEqual(['lin-test-sessions-o0-g2', 'lin-test-sessions-o1-g1']);
    expect(report.keepalives.ok).toBeGreaterThan(2);
    expect(report.unexpected).toEqual({});
    expect(report.events.some((e) => e.op === 'final-read' && e.outcome === 'present')).toBe(true);
  }, 20_000);

  it('retry a keepalive that gets no answer on the next node, at once', async () => {
    const state = { forget: new Set<string>(), opened: [] as string[] };
    const ok = sessionNode(state);
    let hang = false;
    const hanging = await fakeNode((req, body, res) =>
      hang && /keepalive/.test(req.url ?? '') ? undefined : ok(req, body, res),
    );
    const urls = [hanging, await fakeNode(ok)];
    const t0 = Date.now();
    const w = new SessionsWorkload({
      view: view(urls),
      ns: 'lin-test',
      plan: { owners: [owner()] },
      now: () => Date.now() - t0,
    });
    await w.start();
    hang = true;
    await new Promise((r) => setTimeout(r, 2500));
    const report = await w.finish([]);
    expect(report.falseExpiries).toEqual([]);
    expect(report.sessions.map((s) => s.verdict)).toEqual(['alive']);
    const kas = report.events.filter((e) => e.op === 'keepalive');
    expect(kas.some((e) => e.node === 'n1' && e.outcome === 'timeout')).toBe(true);
    // Every timed-out attempt at n1 is followed at once by one at n2 that succeeds.
    for (let i = 0; i < kas.length - 1; i++)
      if (kas[i]!.outcome === 'timeout') expect(kas[i + 1]).toMatchObject({ node: 'n2', outcome: 'ok' });
  }, 20_000);

  it("close and reopen sessions on plan, and judge a stall past the TTL as the owner's own lapse", async () => {
    const state = { forget: new Set<string>(), opened: [] as string[] };
    const node = sessionNode(state);
    const closed: string[] = [];
    const url = await fakeNode((req, body, res) => {
      if (req.method === 'DELETE' && (req.url ?? '').startsWith('/v1/sessions/')) {
        const id = decodeURIComponent((req.url ?? '').split('/')[3]!);
        closed.push(id);
        state.forget.add(id);
      }
      return node(req, body, res);
    });
    const t0 = Date.now();
    const stalling = owner({ stallAfter: 1 });
    const w = new SessionsWorkload({
      view: view([url]),
      ns: 'lin-test',
      plan: { owners: [owner({ rotateMs: 1500 }), stalling] },
      now: () => Date.now() - t0,
    });
    await w.start();
    // The stalling owner's session is forgotten while it sends nothing (its leader expired it).
    await new Promise((r) => setTimeout(r, 1200));
    state.forget.add('lin-test-sessions-o1-g1');
    await new Promise((r) => setTimeout(r, 2500));
    const report = await w.finish([]);
    expect(closed).toContain('lin-test-sessions-o0-g1');
    expect(state.opened).toContain('lin-test-sessions-o0-g2');
    const byId = new Map(report.sessions.map((v) => [v.session, v]));
    expect(byId.get('lin-test-sessions-o0-g1')?.summary).toMatch(/stayed alive until its owner closed it/);
    expect(byId.get('lin-test-sessions-o1-g1')).toMatchObject({ verdict: 'lapsed' });
    expect(byId.get('lin-test-sessions-o1-g1')?.summary).toMatch(/legitimate: the owner sent no keepalive for \d+ ms/);
    expect(report.falseExpiries).toEqual([]);
    expect(report.events.some((e) => e.op === 'stall')).toBe(true);
  }, 20_000);
});
