/**
 * Route behaviour in process (InMemoryNodeApi, app.inject): blocking queries, minRevision,
 * compare-and-set PATCH and disabled instances, access rules and the environment label,
 * readiness, metrics, auth per role on every route.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Command } from '../src/registry/index.js';
import { TokenAuthority } from '../src/server/auth.js';
import { INSTANCE_URL, type TestApp, testApp } from './api-helpers.js';
import { HttpWatcher } from './api-sse.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

const reg = (service: string, id: string, extra: Record<string, unknown> = {}): Command =>
  ({ type: 'register', namespace: 'prod', service, id, address: '10.0.0.1', port: 80, ...extra }) as Command;

type Waits = 'rollcall_blocking_queries' | 'rollcall_min_revision_waits';

/** Reads the node holds now, waiting for a change (blocking queries) or for a revision (minRevision). */
async function waiting(gauge: Waits = 'rollcall_blocking_queries'): Promise<number> {
  const text = (await t.req({ method: 'GET', url: '/metrics' })).text;
  return Number(new RegExp(`^${gauge} (\\d+)$`, 'm').exec(text)?.[1]);
}

/**
 * The answer to `p`, or 'parked' once the node holds it waiting (by `gauge`): whichever
 * comes first, with no time window (a slow machine only makes either take longer).
 */
async function answerOrParked<T>(p: Promise<T>, gauge?: Waits): Promise<T | 'parked'> {
  let answered = false;
  const parked = (async () => {
    while (!answered && (await waiting(gauge)) === 0) await new Promise((r) => setImmediate(r));
    return 'parked' as const;
  })();
  try {
    return await Promise.race([p, parked]);
  } finally {
    answered = true;
  }
}

describe('blocking queries', () => {
  it('wake for a change to their own service only, with the new index', async () => {
    t = await testApp();
    t.node.apply(reg('orders', 'o1'));
    t.node.apply(reg('payments', 'p1'));
    const first = await t.req({ method: 'GET', url: INSTANCE_URL });
    const index = Number(first.headers['x-rollcall-index']);
    expect(index).toBe(1);
    const blocked = t.req({ method: 'GET', url: `${INSTANCE_URL}?index=${index}&wait=10s` });
    expect(await answerOrParked(blocked)).toBe('parked');
    // Waiters are woken inside the apply that concerns them: still held after these.
    t.node.apply(reg('payments', 'p2'));
    t.node.apply({ type: 'openSession', sessionId: 's', ttlMs: 5000, now: 1 } as Command);
    expect(await waiting()).toBe(1);
    t.node.apply(reg('orders', 'o2'));
    const res = await blocked;
    expect(res.status).toBe(200);
    expect(Number(res.headers['x-rollcall-index'])).toBe(5);
    expect(res.body.instances.map((i: { id: string }) => i.id)).toEqual(['o1', 'o2']);
  });

  it('answer unchanged when the wait ends, and at once for any other index', async () => {
    t = await testApp();
    t.node.apply(reg('orders', 'o1'));
    const started = Date.now();
    const waited = await t.req({ method: 'GET', url: `${INSTANCE_URL}?index=1&wait=100ms` });
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    expect(waited.headers['x-rollcall-index']).toBe('1');
    expect(waited.body.instances).toHaveLength(1);
    // Older index: there is news. Newer (e.g. the node restarted on a lagging copy): no spinning either way.
    for (const index of [0, 99]) {
      const res = await answerOrParked(t.req({ method: 'GET', url: `${INSTANCE_URL}?index=${index}&wait=5m` }));
      expect(res).not.toBe('parked');
    }
  });

  it("are capped by the node's longest wait", async () => {
    t = await testApp({ maxWaitMs: 50 });
    t.node.apply(reg('orders', 'o1'));
    const capped = t.req({ method: 'GET', url: `${INSTANCE_URL}?index=1&wait=10m` });
    expect(await answerOrParked(capped)).toBe('parked');
    // Answered unchanged once the cap (50 ms) ends it: without the cap this would wait 10 minutes.
    const res = await capped;
    expect(res.status).toBe(200);
    expect(res.headers['x-rollcall-index']).toBe('1');
  });
});

describe('minRevision', () => {
  it('waits until this node has applied the revision, then reads locally', async () => {
    t = await testApp({ minRevisionTimeoutMs: 20_000 });
    t.node.apply(reg('orders', 'o1'));
    const read = t.req({ method: 'GET', url: `${INSTANCE_URL}/o2?minRevision=2` });
    expect(await answerOrParked(read, 'rollcall_min_revision_waits')).toBe('parked');
    t.node.apply(reg('orders', 'o2'));
    const res = await read;
    expect(res.status).toBe(200);
    expect(res.body.revision).toBe(2);
    expect(res.body.instance.id).toBe('o2');
  });

  it('answers 504 naming minRevision when the wait runs out', async () => {
    t = await testApp({ minRevisionTimeoutMs: 30 });
    const res = await t.req({ method: 'GET', url: `${INSTANCE_URL}?minRevision=7` });
    expect(res.status).toBe(504);
    expect(res.body.error).toMatchObject({ code: 'TIMEOUT', field: 'minRevision', revision: 0 });
  });
});

describe('compare-and-set updates', () => {
  it('applies a PATCH at the right version, hides a disabled instance from lists unless asked', async () => {
    t = await testApp();
    await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o1`,
      payload: { address: '10.0.0.1', port: 80, tags: ['a'], metadata: { zone: 'z1' } },
    });
    const got = await t.req({ method: 'GET', url: `${INSTANCE_URL}/o1` });
    expect(got.headers.etag).toBe('"1"');
    const res = await t.req({
      method: 'PATCH',
      url: `${INSTANCE_URL}/o1`,
      headers: { 'if-match': got.headers.etag as string },
      payload: { weight: 7, tags: ['b'], enabled: false },
    });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"2"');
    expect(res.body.instance).toMatchObject({
      weight: 7,
      tags: ['b'],
      metadata: { zone: 'z1' },
      enabled: false,
      version: 2,
    });
    const stale = await t.req({
      method: 'PATCH',
      url: `${INSTANCE_URL}/o1`,
      headers: { 'if-match': '1' },
      payload: { weight: 8 },
    });
    expect(stale.status).toBe(412);
    expect(stale.body.error).toMatchObject({ code: 'VERSION_MISMATCH', currentVersion: 2, field: 'if-match' });
    expect((await t.req({ method: 'GET', url: INSTANCE_URL })).body.instances).toEqual([]);
    const all = await t.req({ method: 'GET', url: `${INSTANCE_URL}?includeDisabled=true` });
    expect(all.body.instances.map((i: { id: string; enabled: boolean }) => [i.id, i.enabled])).toEqual([['o1', false]]);
  });
});

describe('namespace-wide list', () => {
  it('lists every instance of one namespace at one revision, sorted by service, cluster, id', async () => {
    t = await testApp();
    t.node.apply(reg('payments', 'p1'));
    t.node.apply(reg('orders', 'o2', { cluster: 'b' }));
    t.node.apply(reg('orders', 'o1', { cluster: 'b' }));
    t.node.apply(reg('orders', 'o3', { cluster: 'a' }));
    t.node.apply({
      type: 'register',
      namespace: 'staging',
      service: 'orders',
      id: 'x',
      address: '10.0.0.2',
      port: 80,
    } as Command);
    t.node.apply(reg('orders', 'off', { enabled: false }));
    const res = await t.req({ method: 'GET', url: '/v1/namespaces/prod/instances' });
    expect(res.status).toBe(200);
    expect(res.body.revision).toBe(6);
    expect(res.body.instances.map((i: { service: string; id: string }) => `${i.service}/${i.id}`)).toEqual([
      'orders/o3',
      'orders/o1',
      'orders/o2',
      'payments/p1',
    ]);
    const all = await t.req({ method: 'GET', url: '/v1/namespaces/prod/instances?includeDisabled=true' });
    expect(all.body.instances.map((i: { id: string }) => i.id)).toContain('off');
    const bad = await t.req({ method: 'GET', url: '/v1/namespaces/prod/instances?cluster=a' });
    expect(bad.status).toBe(400);
    expect((await t.req({ method: 'GET', url: '/v1/namespaces/empty/instances' })).body.instances).toEqual([]);
  });
});

describe('access rules', () => {
  it('refuse registrations by deny rule, allow list and environment label, and name what refused', async () => {
    t = await testApp();
    const rules = {
      environment: 'prod',
      allow: [
        { name: 'prod-net', namespace: 'prod', cidr: '10.0.0.0/8' },
        { namespace: 'prod', service: 'legacy' },
      ],
      deny: [{ name: 'quarantine', cidr: '10.66.0.0/16' }, { service: 'banned' }],
    };
    const set = await t.req({ method: 'PUT', url: '/v1/access-rules', payload: rules });
    expect(set.status).toBe(200);
    expect(set.body.rules).toEqual({ requireEnvironment: false, ...rules });
    const got = await t.req({ method: 'GET', url: '/v1/access-rules' });
    expect(got.body).toMatchObject({ rulesRevision: set.body.revision, rules: set.body.rules });

    const register = (ns: string, svc: string, body: Record<string, unknown>) =>
      t.req({
        method: 'PUT',
        url: `/v1/namespaces/${ns}/services/${svc}/instances/i1`,
        payload: { port: 80, ...body },
      });
    const cases: [string, string, Record<string, unknown>, number, string, string?][] = [
      ['prod', 'orders', { address: '10.1.2.3' }, 200, ''],
      ['prod', 'orders', { address: '10.1.2.3', metadata: { environment: 'prod' } }, 200, ''],
      ['prod', 'orders', { address: '10.66.0.9' }, 403, 'ACCESS_DENIED', 'deny[0] (quarantine)'],
      ['prod', 'banned', { address: '10.1.2.3' }, 403, 'ACCESS_DENIED', 'deny[1]'],
      ['prod', 'orders', { address: '192.168.1.1' }, 403, 'ACCESS_DENIED', 'allow'],
      ['prod', 'orders', { address: 'orders.internal' }, 403, 'ACCESS_DENIED', 'allow'],
      ['prod', 'legacy', { address: 'legacy.internal' }, 200, ''],
      ['test', 'orders', { address: '10.1.2.3' }, 403, 'ACCESS_DENIED', 'allow'],
      ['prod', 'orders', { address: '10.1.2.3', metadata: { environment: 'test' } }, 409, 'ENVIRONMENT_MISMATCH'],
    ];
    for (const [ns, svc, body, status, code, rule] of cases) {
      const before = t.node.registry.revision;
      const res = await register(ns, svc, body);
      expect([ns, svc, body, res.status], JSON.stringify(res.body)).toEqual([ns, svc, body, status]);
      if (status === 200) continue;
      expect(res.body.error.code).toBe(code);
      if (rule) expect(res.body.error.rule).toBe(rule);
      if (code === 'ENVIRONMENT_MISMATCH') expect(res.body.error.field).toBe('metadata.environment');
      expect(t.node.registry.revision).toBe(before);
    }
    // An admin PATCH cannot relabel an instance into another environment either.
    const patched = await t.req({
      method: 'PATCH',
      url: '/v1/namespaces/prod/services/orders/instances/i1',
      headers: { 'if-match': '2' },
      payload: { metadata: { environment: 'dev' } },
    });
    expect(patched.status).toBe(409);
  });

  it('can require every instance to carry its environment', async () => {
    t = await testApp();
    await t.req({ method: 'PUT', url: '/v1/access-rules', payload: { environment: 'test', requireEnvironment: true } });
    const missing = await t.req({ method: 'PUT', url: `${INSTANCE_URL}/o1`, payload: { address: 'a', port: 1 } });
    expect(missing.status).toBe(409);
    expect(missing.body.error.code).toBe('ENVIRONMENT_MISMATCH');
    const labelled = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o1`,
      payload: { address: 'a', port: 1, metadata: { environment: 'test' } },
    });
    expect(labelled.status).toBe(200);
  });

  it('the state machine decides: a register admitted by the fast path is refused by rules that committed before it, with the same body', async () => {
    t = await testApp();
    await t.req({
      method: 'PUT',
      url: '/v1/access-rules',
      payload: { environment: 'prod', deny: [{ name: 'lab', cidr: '10.66.0.0/16' }] },
    });
    const deniedBody = {
      error: {
        code: 'ACCESS_DENIED',
        message: 'registration of prod/orders at 10.66.1.1 is refused by access rule deny[0] (lab)',
        rule: 'deny[0] (lab)',
      },
    };
    const wrongEnvBody = {
      error: {
        code: 'ENVIRONMENT_MISMATCH',
        message: 'instance is labelled environment "test" but this registry is "prod"',
        field: 'metadata.environment',
      },
    };
    // Fast path: refused after a read barrier, no log entry.
    let index = t.node.registry.appliedIndex;
    const revision = t.node.registry.revision;
    const denied = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o1`,
      payload: { address: '10.66.1.1', port: 1 },
    });
    expect([denied.status, denied.body]).toEqual([403, deniedBody]);
    const wrongEnv = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o1`,
      payload: { address: '10.0.0.1', port: 1, metadata: { environment: 'test' } },
    });
    expect([wrongEnv.status, wrongEnv.body]).toEqual([409, wrongEnvBody]);
    expect([t.node.registry.appliedIndex, t.node.registry.revision]).toEqual([index, revision]);

    // The race: the rules this node has applied admit the register, but a setAccessRules that
    // denies it commits before the register's entry. The state machine refuses it.
    const submit = t.node.submit.bind(t.node);
    let before: (() => void) | null = null;
    t.node.submit = async (command, timeoutMs) => {
      before?.();
      before = null;
      return submit(command, timeoutMs);
    };
    before = () =>
      t.node.apply({
        type: 'setAccessRules',
        rules: {
          environment: 'prod',
          deny: [
            { name: 'lab', cidr: '10.66.0.0/16' },
            { name: 'late', cidr: '10.77.0.0/16' },
          ],
        },
      });
    index = t.node.registry.appliedIndex;
    const late = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o2`,
      headers: { 'x-rollcall-client-id': 'deployer', 'x-rollcall-seq': '1' },
      payload: { address: '10.77.0.1', port: 1 },
    });
    expect([late.status, late.body]).toEqual([
      403,
      {
        error: {
          code: 'ACCESS_DENIED',
          message: 'registration of prod/orders at 10.77.0.1 is refused by access rule deny[1] (late)',
          rule: 'deny[1] (late)',
        },
      },
    ]);
    expect(t.node.registry.appliedIndex).toBe(index + 2);
    expect(t.node.registry.getInstance('prod', 'orders', 'o2')).toBeUndefined();
    // Its retry is answered from the dedup table (the fast path leaves known retries alone).
    const retried = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o2`,
      headers: { 'x-rollcall-client-id': 'deployer', 'x-rollcall-seq': '1' },
      payload: { address: '10.77.0.1', port: 1 },
    });
    expect([retried.status, retried.body]).toEqual([late.status, late.body]);
    expect(t.node.registry.appliedIndex).toBe(index + 3);

    // PATCH: the same for a relabel, field named as the client sent it.
    const created = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o1`,
      payload: { address: '10.0.0.1', port: 1 },
    });
    const version = String(created.body.instance.version);
    const relabel = await t.req({
      method: 'PATCH',
      url: `${INSTANCE_URL}/o1`,
      headers: { 'if-match': version },
      payload: { metadata: { environment: 'test' } },
    });
    expect([relabel.status, relabel.body.error.code, relabel.body.error.field]).toEqual([
      409,
      'ENVIRONMENT_MISMATCH',
      'metadata.environment',
    ]);
    before = () => t.node.apply({ type: 'setAccessRules', rules: { environment: 'staging' } });
    const raced = await t.req({
      method: 'PATCH',
      url: `${INSTANCE_URL}/o1`,
      headers: { 'if-match': version },
      payload: { metadata: { environment: 'prod' } },
    });
    expect([raced.status, raced.body.error.code, raced.body.error.field]).toEqual([
      409,
      'ENVIRONMENT_MISMATCH',
      'metadata.environment',
    ]);
  });

  it('the fast path refuses only by the rules after a read barrier: a node behind is not stricter than the rules in force', async () => {
    t = await testApp();
    await t.req({ method: 'PUT', url: '/v1/access-rules', payload: { deny: [{ name: 'old', cidr: '10.66.0.0/16' }] } });
    // This node has applied the old rules only; the looser ones are committed and reach it during the barrier.
    const barrier = t.node.readBarrier.bind(t.node);
    t.node.readBarrier = async (timeoutMs) => {
      t.node.apply({ type: 'setAccessRules', rules: {} });
      return barrier(timeoutMs);
    };
    const res = await t.req({ method: 'PUT', url: `${INSTANCE_URL}/o1`, payload: { address: '10.66.1.1', port: 1 } });
    expect(res.status).toBe(200);
  });

  it('a retry of a register applied under older rules gets its first answer, not a refusal by the new rules', async () => {
    t = await testApp();
    const headers = { 'x-rollcall-client-id': 'deployer', 'x-rollcall-seq': '1' };
    const first = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o1`,
      headers,
      payload: { address: '10.66.1.1', port: 1 },
    });
    expect(first.status).toBe(200);
    await t.req({ method: 'PUT', url: '/v1/access-rules', payload: { deny: [{ cidr: '10.66.0.0/16' }] } });
    const retry = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o1`,
      headers,
      payload: { address: '10.66.1.1', port: 1 },
    });
    expect([retry.status, retry.body.revision]).toEqual([200, first.body.revision]);
    // A new request is judged by the rules in force.
    const next = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/o1`,
      headers: { ...headers, 'x-rollcall-seq': '2' },
      payload: { address: '10.66.1.1', port: 1 },
    });
    expect([next.status, next.body.error.code]).toEqual([403, 'ACCESS_DENIED']);
  });

  it('PUT with If-Match: compare-and-set on the rules revision (0: only if none stored), 412 with currentVersion', async () => {
    t = await testApp();
    const first = await t.req({
      method: 'PUT',
      url: '/v1/access-rules',
      headers: { 'if-match': '0' },
      payload: { deny: [{ service: 'banned' }] },
    });
    expect(first.status).toBe(200);
    expect(first.body.rulesRevision).toBe(first.body.revision);
    const lost = await t.req({ method: 'PUT', url: '/v1/access-rules', headers: { 'if-match': '0' }, payload: {} });
    expect([lost.status, lost.body.error]).toEqual([
      412,
      {
        code: 'VERSION_MISMATCH',
        message: `expected access rules revision 0, but the stored access rules are at revision ${first.body.rulesRevision}`,
        field: 'if-match',
        currentVersion: first.body.rulesRevision,
      },
    ]);
    expect(
      (await t.req({ method: 'PUT', url: '/v1/access-rules', headers: { 'if-match': 'W/"x"' }, payload: {} })).body
        .error,
    ).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'if-match' });
    // The same rules again: no change, rulesRevision stays the one that stored them.
    const same = await t.req({
      method: 'PUT',
      url: '/v1/access-rules',
      headers: { 'if-match': `"${first.body.rulesRevision}"` },
      payload: { deny: [{ service: 'banned' }] },
    });
    expect([same.status, same.body.rulesRevision]).toEqual([200, first.body.rulesRevision]);
    const next = await t.req({
      method: 'PUT',
      url: '/v1/access-rules',
      headers: { 'if-match': String(first.body.rulesRevision) },
      payload: {},
    });
    expect(next.status).toBe(200);
    expect(next.body.rulesRevision).toBeGreaterThan(first.body.rulesRevision);
    expect((await t.req({ method: 'GET', url: '/v1/access-rules' })).body).toMatchObject({
      rulesRevision: next.body.rulesRevision,
    });
  });

  it('reads the defaults before any rules are set', async () => {
    t = await testApp();
    const res = await t.req({ method: 'GET', url: '/v1/access-rules' });
    expect(res.body).toEqual({
      revision: 0,
      rulesRevision: 0,
      rules: { environment: null, requireEnvironment: false, allow: [], deny: [] },
    });
  });
});

describe('shutdown', () => {
  it('ends watch streams and answers waiting reads when the app closes', async () => {
    t = await testApp({ minRevisionTimeoutMs: 60_000, maxWaitMs: 60_000 });
    t.node.apply(reg('orders', 'o1'));
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const w = await HttpWatcher.open(`${address}/v1/watch?namespace=prod&fromRevision=1`);
    await w.until('the first change', (x) => x.changes().length === 1);
    const head = await fetch(`${address}/v1/watch`, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-type')]).toEqual([200, 'text/event-stream; charset=utf-8']);
    const blocked = fetch(`${address}${INSTANCE_URL}?index=1&wait=60s`);
    const waiting = fetch(`${address}${INSTANCE_URL}?minRevision=99`);
    for (;;) {
      const m = (await t.req({ method: 'GET', url: '/metrics' })).text;
      if (m.includes('rollcall_blocking_queries 1') && m.includes('rollcall_min_revision_waits 1')) break;
      await new Promise((r) => setImmediate(r));
    }
    const started = Date.now();
    await t.app.close();
    // Ended, not waited out: the blocking query alone would hold it for 60 s.
    expect(Date.now() - started).toBeLessThan(30_000);
    await w.until('the stream to end', (x) => x.ended);
    expect((await blocked).status).toBe(200);
    expect(((await (await waiting).json()) as { error: { code: string } }).error.code).toBe('SHUTTING_DOWN');
  });
});

describe('readiness and metrics', () => {
  it('is ready with a leader and little apply lag, and says why not otherwise', async () => {
    t = await testApp({ readyMaxLag: 10 });
    expect((await t.req({ method: 'GET', url: '/readyz' })).status).toBe(200);
    t.node.leader = null;
    t.node.lag = 50;
    const res = await t.req({ method: 'GET', url: '/readyz' });
    expect(res.status).toBe(503);
    expect(res.body.ready).toBe(false);
    expect(res.body.reasons.join(' ')).toMatch(/no leader is known.*50 entries behind/);
    expect((await t.req({ method: 'GET', url: '/healthz' })).status).toBe(200);
  });

  it('exposes Prometheus text with the node, watch and HTTP series', async () => {
    t = await testApp();
    await t.req({ method: 'PUT', url: `${INSTANCE_URL}/o1`, payload: { address: 'a', port: 1 } });
    await t.req({ method: 'GET', url: `${INSTANCE_URL}/o1` });
    const res = await t.req({ method: 'GET', url: '/metrics' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const lines = res.text.trim().split('\n');
    // Every sample line is `name{labels} value`, every metric has HELP and TYPE.
    for (const l of lines)
      expect(l).toMatch(/^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.eInfa]+)$/);
    const text = res.text;
    for (const name of [
      'rollcall_term',
      'rollcall_leader_changes_total',
      'rollcall_proposals_total',
      'rollcall_proposal_duration_seconds_bucket',
      'rollcall_apply_lag_entries',
      'rollcall_sessions',
      'rollcall_instances 1',
      'rollcall_watchers{state="live"} 0',
      'process_resident_memory_bytes',
    ]) {
      expect(text).toContain(name);
    }
    expect(text).toContain(
      'rollcall_http_request_duration_seconds_count{method="GET",route="/v1/namespaces/:ns/services/:svc/instances/:id",status="200"} 1',
    );
    expect(text).toContain('rollcall_proposals_total{command="register",outcome="ok"} 1');
  });

  it('counts each live watch fan-out in rollcall_watch_fanout_seconds', async () => {
    t = await testApp();
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const w = await HttpWatcher.open(`${address}/v1/watch?namespace=prod`);
    const fanOuts = async () => {
      const m = (await t.req({ method: 'GET', url: '/metrics' })).text;
      // A histogram without labels shows its series from its first observation on.
      return Number(/^rollcall_watch_fanout_seconds_count (\d+)$/m.exec(m)?.[1] ?? 0);
    };
    expect(await fanOuts()).toBe(0);
    t.node.apply(reg('orders', 'o1'));
    await w.until('the live change', (x) => x.changes().length === 1);
    expect(await fanOuts()).toBe(1);
    w.close();
  });
});

describe('auth per role', () => {
  const TOKENS = {
    read: 'reader-token-000000000000',
    readProd: 'prod-reader-token-0000000',
    register: 'register-token-00000000000',
    registerTest: 'register-test-token-000000',
    admin: 'admin-token-00000000000000',
  };
  const authority = TokenAuthority.parse(
    JSON.stringify([
      { token: TOKENS.read, role: 'read' },
      { token: TOKENS.readProd, role: 'read', namespaces: ['prod'] },
      { token: TOKENS.register, role: 'register', namespaces: ['prod'] },
      { token: TOKENS.registerTest, role: 'register', namespaces: ['test'] },
      { token: TOKENS.admin, role: 'admin' },
    ]),
  );
  type Who = keyof typeof TOKENS | 'none' | 'bad';
  const ROUTES: [string, string, Record<string, unknown> | undefined, Who[]][] = [
    // method, url, body, who may (everyone else: 401 without a valid token, 403 with one)
    ['GET', '/healthz', undefined, ['none', 'bad', 'read', 'readProd', 'register', 'registerTest', 'admin']],
    ['GET', '/readyz', undefined, ['none', 'bad', 'read', 'readProd', 'register', 'registerTest', 'admin']],
    ['GET', '/openapi.json', undefined, ['none', 'bad', 'read', 'readProd', 'register', 'registerTest', 'admin']],
    ['GET', '/metrics', undefined, ['read', 'readProd', 'admin']],
    ['GET', '/v1/cluster', undefined, ['read', 'readProd', 'admin']],
    ['GET', '/v1/access-rules', undefined, ['read', 'readProd', 'admin']],
    ['PUT', '/v1/access-rules', {}, ['admin']],
    ['GET', INSTANCE_URL, undefined, ['read', 'readProd', 'admin']],
    ['GET', '/v1/namespaces/test/services/orders/instances', undefined, ['read', 'admin']],
    ['GET', `${INSTANCE_URL}/o1`, undefined, ['read', 'readProd', 'admin']],
    ['PUT', `${INSTANCE_URL}/o1`, { address: 'a', port: 1 }, ['register', 'admin']],
    ['PUT', '/v1/namespaces/test/services/orders/instances/o1', { address: 'a', port: 1 }, ['registerTest', 'admin']],
    ['PATCH', `${INSTANCE_URL}/o1`, { weight: 1 }, ['admin']],
    ['DELETE', `${INSTANCE_URL}/o9`, undefined, ['register', 'admin']],
    ['POST', '/v1/sessions', { ttlMs: 5000 }, ['register', 'registerTest', 'admin']],
    // s1 has no instance yet: any register token may keep it alive (docs/api.md, Sessions and tokens).
    ['PUT', '/v1/sessions/s1/keepalive', undefined, ['register', 'registerTest', 'admin']],
    ['DELETE', '/v1/sessions/s9', undefined, ['register', 'registerTest', 'admin']],
    // s2 and s3 hold an instance in prod: a token limited to test may not touch them (issue 22 item 3).
    ['PUT', '/v1/sessions/s2/keepalive', undefined, ['register', 'admin']],
    ['PUT', '/v1/sessions/s2/keepalive', { report: { successRatio: 0.2 } }, ['register', 'admin']],
    ['PUT', '/v1/namespaces/test/services/orders/instances/t1', { address: 'a', port: 1, sessionId: 's2' }, ['admin']],
    ['DELETE', '/v1/sessions/s3', undefined, ['register', 'admin']],
    ['GET', '/v1/watch?namespace=bad%20ns', undefined, ['read', 'admin']],
    ['GET', '/v1/watch?namespace=test&fromRevision=0', undefined, ['read', 'admin']],
    ['GET', '/v1/watch?namespace=prod&fromRevision=0', undefined, ['read', 'readProd', 'admin']],
    ['GET', '/v1/watch?fromRevision=0', undefined, ['read', 'admin']],
    ['POST', '/v1/cluster/leader', { to: 'fake1' }, ['admin']],
    ['POST', '/v1/cluster/members', { id: 'n4', peerAddress: '127.0.0.1:1' }, ['admin']],
    ['DELETE', '/v1/cluster/members/n4', undefined, ['admin']],
  ];

  it('lets each role through exactly where it may go', async () => {
    t = await testApp({ tokens: authority });
    t.node.apply({ type: 'openSession', sessionId: 's1', ttlMs: 5000, now: 1 } as Command);
    for (const s of ['s2', 's3']) {
      t.node.apply({ type: 'openSession', sessionId: s, ttlMs: 60_000, now: 1 } as Command);
      t.node.apply({
        type: 'register',
        namespace: 'prod',
        service: 'orders',
        id: `e-${s}`,
        address: 'a',
        port: 1,
        sessionId: s,
      } as Command);
    }
    const failures: string[] = [];
    for (const [method, url, body, allowed] of ROUTES) {
      // registerTest before register and admin: a row that deletes must meet the refusals first.
      for (const who of ['none', 'bad', 'read', 'readProd', 'registerTest', 'register', 'admin'] as Who[]) {
        const headers: Record<string, string> = {};
        if (who === 'bad') headers.authorization = 'Bearer not-a-token-at-all-000';
        else if (who !== 'none') headers.authorization = `Bearer ${TOKENS[who]}`;
        if (method === 'PATCH')
          headers['if-match'] = String(t.node.registry.getInstance('prod', 'orders', 'o1')?.version ?? 1);
        const res = await t.req({ method: method as 'GET', url, headers, ...(body ? { payload: body } : {}) });
        const want = allowed.includes(who) ? 'allowed' : who === 'none' || who === 'bad' ? 401 : 403;
        const got = res.status === 401 || res.status === 403 ? res.status : 'allowed';
        if (got !== want)
          failures.push(`${who} ${method} ${url}: want ${want}, got ${res.status} ${res.text.slice(0, 120)}`);
        if (res.status === 401) {
          expect(res.body.error.code).toBe('UNAUTHENTICATED');
          expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="rollcall"/);
        }
        if (res.status === 403 && res.body.error.code === 'FORBIDDEN')
          expect(res.body.error.message).toMatch(/^token /);
      }
    }
    expect(failures).toEqual([]);
  });
});
