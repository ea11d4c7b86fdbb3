/**
 * The monitoring routes in-process, over the InMemoryNodeApi of the API tests (a real Registry, no
 * Raft): the page and its files (src/ui), and the API routes it reads (src/server/routes):
 * the services listing, alerts (JSON and SSE), health reports (local and relayed to the
 * leader) and the policy.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthPolicy, TrackedHealth } from '../src/health/index.js';
import type { Command, CommandResult, StoredHealthPolicy } from '../src/registry/index.js';
import type { MonitorNode } from '../src/server/node-api.js';
import {
  type HealthDeps,
  healthRoutes,
  type PolicyWriteOptions,
  type RelayFetch,
} from '../src/server/routes/health.js';
import { serviceRoutes } from '../src/server/routes/services.js';
import { ASSETS, PAGE } from '../src/ui/assets/index.js';
import { registerUiRoutes } from '../src/ui/index.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

async function build(
  node: MonitorNode,
  health: Partial<HealthDeps> = {},
): Promise<{ app: FastifyInstance; monitor: ReturnType<typeof healthRoutes> }> {
  app = Fastify();
  registerUiRoutes(app);
  serviceRoutes(app, { node });
  const monitor = healthRoutes(app, { node, alertIntervalMs: 60_000, ...health });
  await app.ready();
  return { app, monitor };
}

const reg = (id: string, over: Record<string, unknown> = {}): Command =>
  ({
    type: 'register',
    namespace: 'prod',
    service: 'orders',
    id,
    address: '10.0.0.1',
    port: 80,
    metadata: { zone: 'a' },
    ...over,
  }) as Command;

describe('the page', () => {
  it('is served at /ui with a strict CSP and revalidates with its ETag', async () => {
    const { app } = await build(await InMemoryNodeApi.create());
    const res = await app.inject({ method: 'GET', url: '/ui' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.body).toContain('<script type="module" src="/ui/assets/app.js">');
    const again = await app.inject({
      method: 'GET',
      url: '/ui',
      headers: { 'if-none-match': String(res.headers.etag) },
    });
    expect(again.statusCode).toBe(304);
  });

  it('serves its files, and 404 for anything else under /ui/assets', async () => {
    const { app } = await build(await InMemoryNodeApi.create());
    const js = await app.inject({ method: 'GET', url: '/ui/assets/app.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toContain('text/javascript');
    expect((await app.inject({ method: 'GET', url: '/ui/assets/app.css' })).headers['content-type']).toContain(
      'text/css',
    );
    const missing = await app.inject({ method: 'GET', url: '/ui/assets/..%2Fpackage.json' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('ROUTE_NOT_FOUND');
  });

  it('ships files that parse as ES modules, import only each other, and fetch nothing from outside', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rollcall-ui-'));
    try {
      for (const [name, a] of ASSETS) {
        const text = a.body.toString('utf8');
        expect(text, name).not.toMatch(/https?:\/\/|@import|fonts\./);
        if (name.endsWith('.css')) expect(text).not.toMatch(/url\(/);
        if (!name.endsWith('.js')) continue;
        const file = path.join(dir, name.replace(/\.js$/, '.mjs'));
        writeFileSync(file, text);
        execFileSync(process.execPath, ['--check', file]); // throws with the syntax error
        for (const m of text.matchAll(/from '\.\/([^']+)'/g))
          expect(ASSETS.has(m[1]!), `${name} imports ${m[1]}`).toBe(true);
      }
      for (const m of PAGE.body.toString('utf8').matchAll(/(?:src|href)="\/ui\/assets\/([^"]+)"/g))
        expect(ASSETS.has(m[1]!)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('GET /v1/services', () => {
  it('lists services with health counts, and their instances at one revision on request', async () => {
    const node = await InMemoryNodeApi.create();
    node.apply(reg('o1'));
    node.apply(reg('o2'));
    node.apply(reg('o3', { enabled: false }));
    node.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'o2', health: 'subhealthy' });
    node.apply(reg('s1', { namespace: 'test', service: 'search' }));
    const { app } = await build(node);
    const all = (await app.inject({ method: 'GET', url: '/v1/services' })).json();
    expect(all.revision).toBe(node.registry.revision);
    expect(all.services.map((s: { namespace: string; service: string }) => `${s.namespace}/${s.service}`)).toEqual([
      'prod/orders',
      'test/search',
    ]);
    expect(all.services[0].health).toEqual({ healthy: 1, subhealthy: 1, suspect: 0, down: 0, disabled: 1 });
    expect(all.services[0].instances).toBeUndefined();
    const withInstances = (
      await app.inject({ method: 'GET', url: '/v1/services?namespace=prod&instances=true&consistency=serializable' })
    ).json();
    expect(withInstances.services).toHaveLength(1);
    expect(
      withInstances.services[0].instances.map((i: { id: string; health: string }) => `${i.id}:${i.health}`),
    ).toEqual(['o1:healthy', 'o2:subhealthy', 'o3:healthy']);
    expect(withInstances.services[0].instances[0]).toMatchObject({
      namespace: 'prod',
      service: 'orders',
      metadata: { zone: 'a' },
      weight: 100,
      version: 1,
    });
    const bad = await app.inject({ method: 'GET', url: '/v1/services?namespace=a%2Fb' });
    expect(bad.statusCode).toBe(400);
  });
});

describe('alerts', () => {
  it("fire and resolve on the monitor's ticks, and show in GET /v1/alerts", async () => {
    const node = await InMemoryNodeApi.create();
    node.apply(reg('o1'));
    const { app, monitor } = await build(node);
    expect(monitor.tick()).toEqual([]);
    node.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'o1', health: 'down' });
    const fired = monitor.tick();
    expect(fired.map((e) => `${e.type} ${e.alert.id}`)).toEqual(['fired service-min-healthy:prod/orders']);
    const body = (await app.inject({ method: 'GET', url: '/v1/alerts' })).json();
    expect(body.active.map((a: { id: string }) => a.id)).toEqual(['service-min-healthy:prod/orders']);
    node.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'o1', health: 'healthy' });
    expect(monitor.tick().map((e) => e.type)).toEqual(['resolved']);
  });

  it('stream a snapshot on connect, then each fired and resolved alert', async () => {
    const node = await InMemoryNodeApi.create();
    node.apply(reg('o1'));
    const { app, monitor } = await build(node);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const ctrl = new AbortController();
    const res = await fetch(`${url}/v1/alerts/stream`, { signal: ctrl.signal });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const until = async (what: string) => {
      while (!text.includes(what)) text += new TextDecoder().decode((await reader.read()).value);
    };
    await until('event: snapshot');
    node.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'o1', health: 'down' });
    monitor.tick();
    await until('"type":"fired"');
    expect(text).toMatch(/event: alert\nid: 1\ndata: \{"seq":1,"type":"fired"/);
    ctrl.abort();
  });

  it('post to the webhook only while this node leads', async () => {
    const node = await InMemoryNodeApi.create();
    node.apply(reg('o1'));
    const posted: unknown[] = [];
    const webhook = { post: (p: unknown) => void posted.push(p), close: () => {} } as unknown as NonNullable<
      HealthDeps['webhook']
    >;
    const { monitor } = await build(node, { webhook });
    node.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'o1', health: 'down' });
    node.leader = 'other';
    monitor.tick();
    expect(posted).toEqual([]);
    node.leader = node.id;
    node.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'o1', health: 'healthy' });
    monitor.tick();
    expect(posted).toMatchObject([
      { node: 'fake1', type: 'resolved', alert: { id: 'service-min-healthy:prod/orders' } },
    ]);
  });
});

describe('GET /v1/health/reports', () => {
  const tracked: TrackedHealth = {
    namespace: 'prod',
    service: 'orders',
    id: 'o1',
    report: { cpu: 0.95 },
    reportedAt: Date.now() - 1000,
    state: 'subhealthy',
    since: 0,
    pending: null,
  };

  it("answers from the leader's tracker, filtered", async () => {
    const node = await InMemoryNodeApi.create();
    const { app } = await build(node, { reports: () => [tracked, { ...tracked, service: 'payments' }] });
    const body = (await app.inject({ method: 'GET', url: '/v1/health/reports?namespace=prod&service=orders' })).json();
    expect(body).toMatchObject({
      from: 'fake1',
      available: true,
      reports: [{ id: 'o1', report: { cpu: 0.95 }, state: 'subhealthy' }],
    });
    expect(body.reports[0].ageMs).toBeGreaterThanOrEqual(1000);
  });

  it("relays to the leader from a follower, with the caller's credentials and local=true", async () => {
    const fake = await InMemoryNodeApi.create();
    const follower: MonitorNode = {
      id: 'n2',
      leader: 'n1',
      registry: fake.registry,
      integrity: fake.integrity,
      readBarrier: (ms) => fake.readBarrier(ms),
      status: () => ({
        ...fake.status(),
        id: 'n2',
        members: [
          {
            id: 'n1',
            isLearner: false,
            match: null,
            lastContact: Date.now(),
            connected: true,
            reported: {
              role: 'leader',
              term: 1,
              commitIndex: 1,
              appliedIndex: 1,
              http: 'http://leader:1',
              at: Date.now(),
            },
          },
        ],
      }),
    };
    const seen: { url: string; headers: Record<string, string> }[] = [];
    const relayFetch: RelayFetch = async (url, init) => {
      seen.push({ url, headers: init.headers });
      return { status: 200, json: async () => ({ from: 'n1', available: true, reports: [tracked] }) };
    };
    const { app } = await build(follower, { reports: () => null, relayFetch });
    const body = (
      await app.inject({
        method: 'GET',
        url: '/v1/health/reports?service=orders',
        headers: { authorization: 'Bearer t0k' },
      })
    ).json();
    expect(body).toMatchObject({ from: 'n1', available: true });
    expect(seen).toEqual([
      {
        url: 'http://leader:1/v1/health/reports?local=true&service=orders',
        headers: { accept: 'application/json', authorization: 'Bearer t0k' },
      },
    ]);
    // Asked with local=true, a follower never relays.
    expect((await app.inject({ method: 'GET', url: '/v1/health/reports?local=true' })).json()).toMatchObject({
      available: false,
      reason: 'n2 is not the leader',
    });
  });

  it('says why when there is nothing to show', async () => {
    const node = await InMemoryNodeApi.create();
    const { app } = await build(node);
    expect((await app.inject({ method: 'GET', url: '/v1/health/reports' })).json()).toMatchObject({
      available: false,
      reports: [],
    });
  });
});

describe('the health policy routes', () => {
  it('show defaults and what a service resolves to; PUT checks and stores through setPolicy', async () => {
    let stored: StoredHealthPolicy | null = null;
    const seen: (number | undefined)[] = [];
    const node = await InMemoryNodeApi.create();
    const setPolicy = async (
      policy: HealthPolicy,
      { expectedRevision }: PolicyWriteOptions,
    ): Promise<CommandResult> => {
      seen.push(expectedRevision);
      if (expectedRevision !== undefined && expectedRevision !== (stored?.revision ?? 0)) {
        return {
          ok: false,
          code: 'VERSION_MISMATCH',
          message: 'no',
          field: 'expectedRevision',
          currentVersion: stored?.revision ?? 0,
        };
      }
      stored = { policy, revision: 42 };
      return { ok: true, revision: 42, changed: true, version: 42 };
    };
    const { app } = await build(node, { policy: () => stored, setPolicy });
    const before = (await app.inject({ method: 'GET', url: '/v1/health/policy?namespace=prod&service=orders' })).json();
    expect(before).toMatchObject({ policy: null, policyRevision: 0 });
    expect(before.resolved.health.successRatio.subhealthy).toEqual({ enter: 0.9, exit: 0.95 });
    const bad = await app.inject({
      method: 'PUT',
      url: '/v1/health/policy',
      payload: { defaults: { health: { cpu: { subhealthy: { enter: 2, exit: 0.5 } } } } },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'policy.defaults.health.cpu.subhealthy.enter',
    });
    const badMatch = await app.inject({
      method: 'PUT',
      url: '/v1/health/policy',
      headers: { 'if-match': 'x' },
      payload: {},
    });
    expect(badMatch.json().error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'if-match' });
    expect(seen).toEqual([]); // refused before anything was proposed
    const ok = await app.inject({
      method: 'PUT',
      url: '/v1/health/policy',
      headers: { 'if-match': '0' },
      payload: { services: { 'prod/orders': { alerts: { minHealthy: 3 } } } },
    });
    expect(ok.json()).toEqual({
      revision: 42,
      policyRevision: 42,
      changed: true,
      policy: { services: { 'prod/orders': { alerts: { minHealthy: 3 } } } },
    });
    const after = (await app.inject({ method: 'GET', url: '/v1/health/policy?namespace=prod&service=orders' })).json();
    expect(after).toMatchObject({
      policyRevision: 42,
      policy: { services: { 'prod/orders': { alerts: { minHealthy: 3 } } } },
    });
    expect(after.resolved.alerts.minHealthy).toBe(3);
    const stale = await app.inject({
      method: 'PUT',
      url: '/v1/health/policy',
      headers: { 'if-match': '"7"' },
      payload: {},
    });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().error).toMatchObject({ code: 'VERSION_MISMATCH', field: 'if-match', currentVersion: 42 });
    expect(seen).toEqual([0, 7]);
  });
});
