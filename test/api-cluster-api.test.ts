/**
 * The rest of the API on a real 3-node cluster: blocking queries on a follower wake for
 * their own service only; minRevision gives read-your-writes on any follower; PATCH and
 * access rules go through followers; probes, metrics and the OpenAPI document on every
 * node; bad input over real HTTP changes nothing; fast-check fuzzes real requests (watches
 * included) and never sees a 5xx or a dead node.
 *
 * Replay a fuzz failure with SEED=<seed> npx vitest run test/api-cluster-api.test.ts
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, type LocalNode } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';
import { seed } from './registry-helpers.js';

let cluster: LocalCluster;
let leader: LocalNode;
let followers: LocalNode[];

beforeAll(async () => {
  cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
  const id = await waitForLeader(cluster.nodes.map((n) => n.url));
  leader = cluster.node(id);
  followers = cluster.nodes.filter((n) => n.id !== id);
});
afterAll(async () => {
  await cluster?.close();
});

const metric = async (node: LocalNode, name: string): Promise<number> => {
  const text = String((await http('GET', `${node.url}/metrics`)).body);
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no metric ${name}`);
  return Number(line.slice(name.length + 1));
};

describe('reads that wait', () => {
  it('a blocking query on a follower wakes for its own service only', async () => {
    const f = followers[0]!;
    await register(leader.url, 'bq', 'mine', 'm1', { address: '10.0.0.1', port: 1 });
    const first = await list(f.url, 'bq', 'mine');
    const index = Number(first.headers.get('x-rollcall-index'));
    const blocked = http(
      'GET',
      `${f.url}/v1/namespaces/bq/services/mine/instances?index=${index}&wait=30s`,
      undefined,
      {},
      40_000,
    );
    let answered = false;
    void blocked.then(() => (answered = true));
    await waitFor('the query to block', async () => (await metric(f, 'rollcall_blocking_queries')) === 1);
    // Changes to another service, applied on this follower, leave it waiting.
    for (let i = 0; i < 3; i++) {
      const other = await register(leader.url, 'bq', 'theirs', `t${i}`, { address: '10.0.0.2', port: 1 });
      expect(
        (await http('GET', `${f.url}/v1/namespaces/bq/services/theirs/instances?minRevision=${other.body.revision}`))
          .status,
      ).toBe(200);
    }
    expect(await metric(f, 'rollcall_blocking_queries')).toBe(1);
    expect(answered).toBe(false);
    // Its own service changes: it answers with the new index.
    const mine = await register(leader.url, 'bq', 'mine', 'm2', { address: '10.0.0.1', port: 2 });
    const res = await blocked;
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('x-rollcall-index'))).toBe(mine.body.revision);
    expect(res.body.instances.map((i: { id: string }) => i.id)).toEqual(['m1', 'm2']);
  });

  it('minRevision reads your own writes on every follower without a linearizable read', async () => {
    for (let i = 0; i < 20; i++) {
      const w = await register(leader.url, 'ryw', 'svc', `i${i}`, { address: '10.0.0.3', port: 1 + i });
      for (const f of followers) {
        const r = await http(
          'GET',
          `${f.url}/v1/namespaces/ryw/services/svc/instances/i${i}?minRevision=${w.body.revision}`,
        );
        expect(r.status).toBe(200);
        expect(r.body.instance.port).toBe(1 + i);
        expect(r.body.revision).toBeGreaterThanOrEqual(w.body.revision);
      }
    }
  });
});

describe('admin through followers', () => {
  it('PATCH with If-Match, disabled instances hidden from lists on every node', async () => {
    const [a, b] = followers as [LocalNode, LocalNode];
    await register(leader.url, 'adm', 'svc', 'x1', { address: '10.0.0.4', port: 1 });
    const got = await http('GET', `${a.url}/v1/namespaces/adm/services/svc/instances/x1`);
    const version = got.headers.get('etag')!;
    const patched = await http(
      'PATCH',
      `${a.url}/v1/namespaces/adm/services/svc/instances/x1`,
      { enabled: false, weight: 0 },
      { 'if-match': version },
    );
    expect(patched.status).toBe(200);
    const again = await http(
      'PATCH',
      `${b.url}/v1/namespaces/adm/services/svc/instances/x1`,
      { weight: 9 },
      { 'if-match': version },
    );
    expect(again.status).toBe(412);
    expect(again.body.error.currentVersion).toBe(patched.body.instance.version);
    for (const n of cluster.nodes) {
      expect((await list(n.url, 'adm', 'svc')).body.instances).toEqual([]);
      expect((await list(n.url, 'adm', 'svc', '?includeDisabled=true')).body.instances).toHaveLength(1);
    }
  });

  it('access rules set through one follower refuse registrations on another', async () => {
    const [a, b] = followers as [LocalNode, LocalNode];
    const set = await http('PUT', `${a.url}/v1/access-rules`, {
      environment: 'prod',
      deny: [{ name: 'lab', namespace: 'acl', cidr: '192.168.0.0/16' }],
    });
    expect(set.status).toBe(200);
    await waitFor(
      'the rules on the other follower',
      async () => (await http('GET', `${b.url}/v1/access-rules?minRevision=${set.body.revision}`)).status === 200,
    );
    const denied = await register(b.url, 'acl', 'svc', 'x', { address: '192.168.4.4', port: 1 });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: 'ACCESS_DENIED', rule: 'deny[0] (lab)' });
    const wrongEnv = await register(b.url, 'acl', 'svc', 'x', {
      address: '10.0.0.5',
      port: 1,
      metadata: { environment: 'test' },
    });
    expect(wrongEnv.status).toBe(409);
    expect(wrongEnv.body.error.code).toBe('ENVIRONMENT_MISMATCH');
    expect(
      (await register(b.url, 'acl', 'svc', 'x', { address: '10.0.0.5', port: 1, metadata: { environment: 'prod' } }))
        .status,
    ).toBe(200);
    // No waiting for b this time: the state machine judges the register after the rules that
    // committed before it, whatever b has applied when it takes the request.
    const tighter = await http(
      'PUT',
      `${leader.url}/v1/access-rules`,
      { environment: 'prod', deny: [{ name: 'lab', namespace: 'acl', cidr: '10.0.0.0/8' }] },
      { 'if-match': String(set.body.rulesRevision) },
    );
    expect(tighter.status).toBe(200);
    const late = await register(b.url, 'acl', 'svc', 'y', { address: '10.0.0.6', port: 1 });
    expect([late.status, late.body.error?.rule]).toEqual([403, 'deny[0] (lab)']);
    expect(
      (await http('PUT', `${leader.url}/v1/access-rules`, {}, { 'if-match': String(set.body.rulesRevision) })).status,
    ).toBe(412);
    expect((await http('PUT', `${leader.url}/v1/access-rules`, {})).status).toBe(200);
  });
});

describe('operations on every node', () => {
  it('readyz, metrics and the same OpenAPI document everywhere', async () => {
    const docs: string[] = [];
    for (const n of cluster.nodes) {
      const ready = await http('GET', `${n.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(ready.body).toMatchObject({ ready: true, leader: leader.id, reasons: [] });
      expect(await metric(n, 'rollcall_leader_known')).toBe(1);
      expect(await metric(n, 'rollcall_term')).toBeGreaterThan(0);
      const doc = await http('GET', `${n.url}/openapi.json`);
      expect(doc.status).toBe(200);
      docs.push(JSON.stringify(doc.body));
    }
    expect(new Set(docs).size).toBe(1);
  });
});

describe('bad input over real HTTP', () => {
  const cases: [string, string, unknown, Record<string, string>, number, string][] = [
    ['PUT', '/v1/namespaces/prod/services/orders/instances/bad', { address: '10.0.0.1', port: 0 }, {}, 400, 'port'],
    [
      'PUT',
      '/v1/namespaces/prod/services/orders/instances/bad',
      { address: '10.0.0.1', port: 1, tags: 'x' },
      {},
      400,
      'tags',
    ],
    ['PUT', '/v1/namespaces/pr%20od/services/orders/instances/bad', { address: '10.0.0.1', port: 1 }, {}, 400, 'ns'],
    ['PATCH', '/v1/namespaces/adm/services/svc/instances/x1', { weight: 1 }, {}, 428, 'if-match'],
    ['POST', '/v1/sessions', { ttlMs: 1 }, {}, 400, 'ttlMs'],
    ['GET', '/v1/namespaces/prod/services/orders/instances?wait=forever&index=1', undefined, {}, 400, 'wait'],
    ['GET', '/v1/watch?cluster=a', undefined, {}, 400, 'cluster'],
    ['PUT', '/v1/access-rules', { allow: [{ cidr: 'nope' }] }, {}, 400, 'allow.0.cidr'],
  ];
  it('answers each with a 4xx naming the field, on leader and followers alike, and changes nothing', async () => {
    for (const n of cluster.nodes) {
      const before = (await http('GET', `${n.url}/v1/cluster`)).body.revision;
      for (const [method, path, body, headers, status, field] of cases) {
        const res = await http(method, `${n.url}${path}`, body, headers);
        expect([n.id, method, path, res.status, res.body?.error?.field]).toEqual([n.id, method, path, status, field]);
      }
      expect((await http('GET', `${n.url}/v1/cluster`)).body.revision).toBe(before);
    }
  });
});

describe('fuzzing real requests', () => {
  it('never answers 5xx and every node keeps serving', async () => {
    const name = fc.oneof(
      { arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,6}$/), weight: 4 },
      fc.string({ maxLength: 8 }).map(encodeURIComponent),
    );
    const query = fc.array(
      fc.tuple(
        fc.constantFrom('namespace', 'service', 'cluster', 'fromRevision', 'consistency', 'includeDisabled', 'x'),
        fc.oneof(fc.stringMatching(/^[a-z0-9]{1,5}$/), fc.string({ maxLength: 6 })),
      ),
      { maxLength: 3 },
    );
    const req = fc.record({
      node: fc.nat({ max: 2 }),
      method: fc.constantFrom('GET', 'PUT', 'POST', 'DELETE', 'PATCH'),
      path: fc.oneof(
        fc.tuple(name, name, name).map(([a, b, c]) => `/v1/namespaces/${a}/services/${b}/instances/${c}`),
        fc.tuple(name, name).map(([a, b]) => `/v1/namespaces/${a}/services/${b}/instances`),
        fc.constantFrom('/v1/watch', '/v1/sessions', '/v1/access-rules', '/v1/cluster', '/readyz'),
        name.map((s) => `/v1/sessions/${s}/keepalive`),
      ),
      query,
      body: fc.option(
        fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.record(
            { address: fc.string(), port: fc.integer(), ttlMs: fc.integer(), weight: fc.integer() },
            { requiredKeys: [] },
          ),
        ),
        { nil: undefined },
      ),
      ifMatch: fc.option(fc.constantFrom('1', '"2"', 'x'), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(req, async (r) => {
        const node = cluster.nodes[r.node]!;
        const qs = r.query.length === 0 ? '' : `?${r.query.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`;
        const headers: Record<string, string> = r.ifMatch ? { 'if-match': r.ifMatch } : {};
        if (r.body !== undefined) headers['content-type'] = 'application/json';
        const abort = new AbortController();
        const res = await fetch(`${node.url}${r.path}${qs}`, {
          method: r.method,
          headers,
          ...(r.body !== undefined && r.method !== 'GET' ? { body: JSON.stringify(r.body) } : {}),
          signal: abort.signal,
        });
        // A watch that opened is a stream: its status is all we need.
        if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
          expect(res.status).toBe(200);
          abort.abort();
          return;
        }
        const text = await res.text();
        if (res.status >= 500)
          throw new Error(`${node.id} ${r.method} ${r.path}${qs} -> ${res.status} ${text.slice(0, 300)}`);
      }),
      { seed: seed(4242), numRuns: 150 },
    );
    for (const n of cluster.nodes) expect((await http('GET', `${n.url}/readyz`)).status).toBe(200);
  });
});
