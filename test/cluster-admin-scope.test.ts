/**
 * Cluster-wide admin routes need an unlimited admin token (docs/security.md, "What a scoped
 * admin token can do"), on one real node started with --acl (real HTTP, real LevelDB): an
 * admin token limited to namespaces, or to service prefixes, is refused with 403 FORBIDDEN
 * on every route that acts on the whole cluster and names no namespace (membership and
 * leadership, the corruption check and its disarm, snapshot download, access rules, the
 * health policy, token management, federation, the test fault hook), each refusal writes an
 * audit line, and an unlimited admin token gets past the check on each. The route list is
 * the table below, checked against the routes the node's OpenAPI document marks
 * `x-rollcall-cluster-wide`, so a new cluster-wide route cannot be left out of the test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { bootstrapWhenReady, http, waitFor } from './helpers/http.js';

interface ClusterWideRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** As fastify names it (and the audit line and the OpenAPI document). */
  readonly route: string;
  /** A concrete path for it. */
  readonly path: string;
  /** A body that changes nothing for the unlimited admin (refused by validation, or a no-op). */
  readonly body?: unknown;
  /** Not in the OpenAPI document (undocumented, test only). */
  readonly undocumented?: true;
}

const ROUTES: readonly ClusterWideRoute[] = [
  { method: 'POST', route: '/v1/cluster/members', path: '/v1/cluster/members', body: {} },
  { method: 'DELETE', route: '/v1/cluster/members/:id', path: '/v1/cluster/members/n9' },
  { method: 'POST', route: '/v1/cluster/leader', path: '/v1/cluster/leader', body: { to: 'n9' } },
  { method: 'POST', route: '/v1/cluster/check', path: '/v1/cluster/check' },
  { method: 'POST', route: '/v1/cluster/check/disarm', path: '/v1/cluster/check/disarm', body: {} },
  { method: 'GET', route: '/v1/snapshot', path: '/v1/snapshot' },
  { method: 'PUT', route: '/v1/access-rules', path: '/v1/access-rules', body: { bogus: true } },
  { method: 'PUT', route: '/v1/health/policy', path: '/v1/health/policy', body: { bogus: true } },
  { method: 'POST', route: '/v1/acl/tokens', path: '/v1/acl/tokens', body: {} },
  { method: 'GET', route: '/v1/acl/tokens', path: '/v1/acl/tokens' },
  { method: 'DELETE', route: '/v1/acl/tokens/:id', path: '/v1/acl/tokens/no-such-token' },
  { method: 'POST', route: '/v1/federation/join', path: '/v1/federation/join', body: {} },
  { method: 'DELETE', route: '/v1/federation', path: '/v1/federation' },
  { method: 'PUT', route: '/v1/test/faults', path: '/v1/test/faults', body: {}, undocumented: true },
];

let node: LocalCluster;
const logs: string[] = [];
let url = '';
let admin = '';
const scoped: { name: string; secret: string }[] = [];
const bearer = (secret: string): Record<string, string> => ({ authorization: `Bearer ${secret}` });

beforeAll(async () => {
  node = await LocalCluster.start({
    size: 1,
    logLevel: 'info',
    extraArgs: ['--acl'],
    env: { ROLLCALL_TEST_FAULTS: '1' },
    onLog: (_id, line) => logs.push(line),
  });
  url = node.nodes[0]!.url;
  const boot = await bootstrapWhenReady(url);
  expect(boot.status, JSON.stringify(boot.body)).toBe(201);
  admin = boot.body.secret;
  for (const body of [
    { name: 'ns-admin', role: 'admin', namespaces: ['prod'] },
    { name: 'svc-admin', role: 'admin', servicePrefixes: ['orders'] },
  ]) {
    const r = await http('POST', `${url}/v1/acl/tokens`, body, bearer(admin));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    scoped.push({ name: body.name, secret: r.body.secret });
  }
}, 60_000);

afterAll(async () => {
  await node?.close();
});

describe('cluster-wide admin routes', () => {
  it('are the routes the API description marks cluster-wide', async () => {
    const doc = await http('GET', `${url}/openapi.json`);
    expect(doc.status).toBe(200);
    const marked: string[] = [];
    for (const [path, ops] of Object.entries(doc.body.paths as Record<string, Record<string, any>>))
      for (const [method, op] of Object.entries(ops))
        if (op['x-rollcall-cluster-wide'] === true) marked.push(`${method.toUpperCase()} ${path}`);
    // The document writes `{id}` where fastify writes `:id`.
    const table = ROUTES.filter((r) => r.undocumented !== true).map(
      (r) => `${r.method} ${r.route.replace(/:(\w+)/g, '{$1}')}`,
    );
    expect(marked.sort()).toEqual(table.sort());
  });

  it.each(ROUTES)('refuse a scoped admin token: $method $route', async (r) => {
    for (const token of scoped) {
      const res = await http(r.method, `${url}${r.path}`, r.body, bearer(token.secret));
      expect(res.status, `${token.name}: ${JSON.stringify(res.body)}`).toBe(403);
      expect(res.body.error.code).toBe('FORBIDDEN');
      expect(res.body.error.message).toMatch(
        new RegExp(
          `^token ${token.name} is limited to .*; this route acts on the whole cluster and names no namespace, so it needs an admin token without namespace or service-prefix limits$`,
        ),
      );
      // The refusal is audited: whose token, which route, refused.
      await waitFor(`the audit line of ${token.name} refused on ${r.method} ${r.route}`, () =>
        logs.some((line) => {
          if (!line.includes('"part":"audit"')) return false;
          const entry = JSON.parse(line) as Record<string, unknown>;
          return (
            entry['principal'] === token.name &&
            entry['method'] === r.method &&
            entry['route'] === r.route &&
            entry['status'] === 403 &&
            entry['result'] === 'refused'
          );
        }),
      );
    }
  });

  it.each(ROUTES)('let an unlimited admin token through: $method $route', async (r) => {
    const res = await http(r.method, `${url}${r.path}`, r.body, bearer(admin));
    // Past the token check: answered by the route (200, or its own 4xx for the harmless body).
    expect([401, 403, 429], `${res.status} ${JSON.stringify(res.body)}`).not.toContain(res.status);
    expect(res.status).toBeLessThan(500);
  });

  it('leave a scoped admin token its own namespaces and the routes every role may use', async () => {
    const [ns] = scoped;
    const put = await http(
      'PUT',
      `${url}/v1/namespaces/prod/services/orders/instances/o1`,
      { address: '10.0.0.1', port: 80 },
      bearer(ns!.secret),
    );
    expect(put.status, JSON.stringify(put.body)).toBeLessThan(300);
    const patch = await http(
      'PATCH',
      `${url}/v1/namespaces/prod/services/orders/instances/o1`,
      { weight: 5 },
      { ...bearer(ns!.secret), 'if-match': '1' },
    );
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    const elsewhere = await http(
      'PATCH',
      `${url}/v1/namespaces/test/services/orders/instances/o1`,
      { weight: 5 },
      { ...bearer(ns!.secret), 'if-match': '1' },
    );
    expect([elsewhere.status, elsewhere.body.error.code]).toEqual([403, 'FORBIDDEN']);
    for (const token of scoped)
      expect((await http('GET', `${url}/v1/cluster`, undefined, bearer(token.secret))).status).toBe(200);
  });
});
