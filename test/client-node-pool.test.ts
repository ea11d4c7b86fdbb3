/**
 * The SDK's node pool against scripted HTTP nodes: failover, leader hints, retries with the
 * same exactly-once ids, per-attempt and per-call deadlines, close().
 */
import { describe, expect, it, vi } from 'vitest';
import { ApiError, ClientClosedError, RollcallClient, TimeoutError, UnavailableError } from '../src/client/index.js';
import { inst, seeded } from './client-helpers.js';
import { deadUrl, json, type ScriptedHttpNode, scriptedPerTest } from './scripted-http-node.js';

const scripted = scriptedPerTest();
const fake = scripted.node;

function client(
  endpoints: string[],
  extra: Partial<ConstructorParameters<typeof RollcallClient>[0]> = {},
): RollcallClient {
  return scripted.client(
    new RollcallClient({
      endpoints,
      random: seeded(1),
      requestTimeoutMs: 3000,
      attemptTimeoutMs: 500,
      ...extra,
    }),
  );
}

const listBody = { revision: 7, serviceRevision: 5, instances: [inst('a')] };
const okList = (n: ScriptedHttpNode) => {
  n.handler = (_req, res) => json(res, 200, listBody);
};
const putOk = (n: ScriptedHttpNode, revision = 3) => {
  n.handler = (req, res) =>
    json(res, 200, { revision, instance: inst('a', { port: JSON.parse(req.body || '{}').port ?? 1 }) });
};
const ids = (n: ScriptedHttpNode) =>
  n.seen
    .filter((s) => s.method !== 'GET')
    .map((s) => `${s.headers['x-rollcall-client-id']}#${s.headers['x-rollcall-seq']}`);

describe('node pool', () => {
  it('honours Retry-After from an overloaded node in full, with jitter, before trying again', async () => {
    const n1 = await fake('n1');
    const seenAt: number[] = [];
    n1.handler = (_req, res) => {
      seenAt.push(performance.now());
      if (seenAt.length === 1)
        return json(res, 503, { error: { code: 'OVERLOADED', message: 'shedding' } }, { 'retry-after': '1' });
      return json(res, 200, listBody);
    };
    const c = client([n1.url], { requestTimeoutMs: 5000 });
    expect((await c.list({ namespace: 'prod', service: 'orders' })).revision).toBe(7);
    expect(seenAt).toHaveLength(2);
    // At least the whole second it asked for (a lower bound: it cannot come early).
    expect(seenAt[1]! - seenAt[0]!).toBeGreaterThanOrEqual(1000);
  });

  it('fails over from a node that is down and then stays on the one that answered', async () => {
    const n2 = await fake('n2');
    okList(n2);
    const c = client([await deadUrl(), n2.url]);
    expect((await c.list({ namespace: 'prod', service: 'orders' })).revision).toBe(7);
    await c.list({ namespace: 'prod', service: 'orders' });
    expect(n2.seen).toHaveLength(2);
  });

  it('passes over a node that accepts connections but never answers, within the attempt deadline', async () => {
    const silent = await fake('n1');
    silent.handler = () => {}; // never answers (a SIGSTOPped process)
    const n2 = await fake('n2');
    okList(n2);
    const c = client([silent.url, n2.url], { attemptTimeoutMs: 300 });
    // The deadlines run on fake timers (the sockets are real), so "within" does not depend on
    // how loaded the machine is.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const listed = c.list({ namespace: 'prod', service: 'orders' });
    while (silent.seen.length === 0) await new Promise((r) => setImmediate(r));
    vi.advanceTimersByTime(299);
    await new Promise((r) => setImmediate(r));
    expect(n2.seen).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect((await listed).revision).toBe(7);
    expect(n2.seen).toHaveLength(1);
  });

  it('retries a write through 503 (no leader) and 504 (outcome unknown) with the same client id and seq', async () => {
    const n1 = await fake('n1');
    const n2 = await fake('n2');
    let calls = 0;
    const script = (
      _req: Parameters<ScriptedHttpNode['handler']>[0],
      res: Parameters<ScriptedHttpNode['handler']>[1],
    ) => {
      calls++;
      if (calls === 1)
        return json(res, 503, { error: { code: 'NO_LEADER', message: 'no leader yet' } }, { 'retry-after': '1' });
      if (calls === 2) return json(res, 504, { error: { code: 'TIMEOUT', message: 'not committed in time' } });
      return json(res, 200, { revision: 9, instance: inst('a') });
    };
    n1.handler = script;
    n2.handler = script;
    const c = client([n1.url, n2.url]);
    const r = await c.putInstance({ namespace: 'prod', service: 'orders', id: 'a', address: '10.0.0.1', port: 1 });
    expect(r.revision).toBe(9);
    const all = [...ids(n1), ...ids(n2)];
    expect(all).toHaveLength(3);
    expect(new Set(all).size).toBe(1); // one (client id, seq) for every attempt
    expect(all[0]).toMatch(/#1$/);
    // The next write is a new sequence number on the same lane.
    await c.putInstance({ namespace: 'prod', service: 'orders', id: 'a', address: '10.0.0.1', port: 2 });
    const next = [...ids(n1), ...ids(n2)].find((x) => !all.includes(x));
    expect(next).toBe(all[0]!.replace(/#1$/, '#2'));
  });

  it('gives concurrent writes different client ids (one write in flight per id)', async () => {
    const n1 = await fake('n1');
    const pending: (() => void)[] = [];
    n1.handler = (_req, res) => {
      pending.push(() => json(res, 200, { revision: 1, instance: inst('a') }));
      if (pending.length === 3) for (const p of pending) p();
    };
    const c = client([n1.url]);
    const spec = { namespace: 'prod', service: 'orders', id: 'a', address: '10.0.0.1', port: 1 };
    await Promise.all([c.putInstance(spec), c.putInstance(spec), c.putInstance(spec)]);
    const clientIds = n1.seen.map((s) => s.headers['x-rollcall-client-id']);
    expect(new Set(clientIds).size).toBe(3);
  });

  it('does not retry a request the server refused (4xx) and reports the error', async () => {
    const n1 = await fake('n1');
    const n2 = await fake('n2');
    for (const n of [n1, n2])
      n.handler = (_req, res) =>
        json(res, 400, { error: { code: 'INVALID_ARGUMENT', message: 'port: must be >= 1', field: 'port' } });
    const c = client([n1.url, n2.url]);
    const err = await c
      .putInstance({ namespace: 'prod', service: 'orders', id: 'a', address: 'x', port: 0 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: 'INVALID_ARGUMENT', field: 'port', node: 'n1' });
    expect(n1.seen.length + n2.seen.length).toBe(1);
  });

  it('sends writes to the leader once a response names it, learning its address from the cluster', async () => {
    const seed = await fake('n1');
    const leader = await fake('n3');
    seed.leader = 'n3';
    leader.leader = 'n3';
    seed.handler = (req, res) =>
      req.url === '/v1/cluster'
        ? json(res, 200, {
            leader: 'n3',
            members: [
              { id: 'n1', http: seed.url },
              { id: 'n3', http: leader.url },
            ],
          })
        : json(res, 200, { revision: 1, instance: inst('a') });
    putOk(leader);
    const c = client([seed.url]);
    const spec = { namespace: 'prod', service: 'orders', id: 'a', address: '10.0.0.1', port: 1 };
    await c.putInstance(spec); // through the seed (it would forward); learns n3
    await expect.poll(() => c.endpoints.length).toBe(2);
    await c.putInstance(spec);
    expect(leader.seen.filter((s) => s.method === 'PUT')).toHaveLength(1);
    expect(c.leader).toBe('n3');
  });

  it('gives up at the call deadline: unavailable for reads, outcome unknown for a write that may have applied', async () => {
    const n1 = await fake('n1');
    n1.handler = (_req, res) => json(res, 503, { error: { code: 'NO_LEADER', message: 'no leader' } });
    const c = client([n1.url], { requestTimeoutMs: 600 });
    await expect(c.list({ namespace: 'prod', service: 'orders' })).rejects.toBeInstanceOf(UnavailableError);
    n1.handler = (_req, res) => json(res, 504, { error: { code: 'TIMEOUT', message: 'slow' } });
    const err = await c.deregister({ namespace: 'prod', service: 'orders', id: 'a' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).outcomeUnknown).toBe(true);
  });

  it('sends the bearer token on every request', async () => {
    const n1 = await fake('n1');
    okList(n1);
    const c = client([n1.url], { token: 's3cret' });
    await c.list({ namespace: 'prod', service: 'orders' });
    expect(n1.seen[0]!.headers.authorization).toBe('Bearer s3cret');
  });

  it('close() ends calls in flight and releases every socket', async () => {
    const n1 = await fake('n1');
    n1.handler = () => {}; // hold the request
    const c = client([n1.url], { attemptTimeoutMs: 5000 });
    const pending = c.list({ namespace: 'prod', service: 'orders' }).catch((e: unknown) => e);
    await expect.poll(() => n1.seen.length).toBe(1);
    await c.close();
    expect(await pending).toBeInstanceOf(ClientClosedError);
    await expect.poll(() => n1.sockets.size).toBe(0);
    expect(() => c.watch({ namespace: 'prod' })).toThrow(ClientClosedError);
  });
});
