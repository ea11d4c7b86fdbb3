/**
 * The Consul listener under token auth (issue 19), in one process over a real Registry: the
 * failed-authentication limit per source address (`--auth-failure-limit`) and the audit lines
 * apply to it as to the native API (src/server/auth-hook.ts), and no audit line holds a secret.
 * A token limited to service prefixes reads the services they cover and no other (a shared
 * answer another token warmed included), and listings, here and from another datacenter
 * (`?dc=`), show only those services.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConsulApp, type ConsulApp } from '../src/consul/index.js';
import { createLogger, silentLogger } from '../src/log/index.js';
import { AccessControl } from '../src/server/acl.js';
import { type Principal, TokenAuthority } from '../src/server/auth.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const READ = 'read-token-0123456789';
const PROD = 'prod-only-token-0123456789';
const WRONG = 'wrong-token-0123456789';

interface AuditLine {
  readonly part?: string;
  readonly api?: string;
  readonly msg?: string;
  readonly principal: string | null;
  readonly route: string | null;
  readonly remote: string;
  readonly status: number;
  readonly result: string;
}

describe('Consul listener under token auth', () => {
  let consul: ConsulApp | undefined;
  afterEach(async () => {
    await consul?.app.close();
  });

  const open = async (limit: number) => {
    const node = await InMemoryNodeApi.create();
    const raw: string[] = [];
    const logger = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk, _enc, cb) {
          raw.push(String(chunk));
          cb();
        },
      }),
    });
    const tokens = TokenAuthority.parse(
      JSON.stringify([
        { token: READ, role: 'read' },
        { token: PROD, role: 'read', namespaces: ['prod'] },
      ]),
    );
    consul = buildConsulApp({ node, logger, tokens, authFailureLimit: limit });
    const app = consul.app;
    const get = (url: string, ip: string, token?: string) =>
      app.inject({
        method: 'GET',
        url,
        remoteAddress: ip,
        headers: token === undefined ? {} : { 'x-consul-token': token },
      });
    const audit = () =>
      raw
        .map((l) => JSON.parse(l) as AuditLine)
        .filter((l) => l.part === 'audit' && l.msg === 'audit' && l.api === 'consul');
    return { get, audit, raw };
  };

  it('limits failed authentications per source address with 429 and Retry-After, as the native API', async () => {
    const { get } = await open(3);
    for (let k = 0; k < 3; k++) {
      const r = await get('/v1/catalog/services', '10.0.0.9', WRONG);
      expect([r.statusCode, r.body]).toEqual([403, 'ACL not found']);
    }
    // The fourth try is refused whatever it carries, the right token included.
    const limited = await get('/v1/catalog/services', '10.0.0.9', READ);
    expect(limited.statusCode).toBe(429);
    expect(limited.body).toMatch(/^Too many failed authentications from 10\.0\.0\.9: retry after \d+ s$/);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Per address: another one is not held back.
    expect((await get('/v1/catalog/services', '10.0.0.10', READ)).statusCode).toBe(200);
    // No token at all is not a guess: it never counts.
    for (let k = 0; k < 5; k++) expect((await get('/v1/catalog/services', '10.0.0.11')).statusCode).toBe(403);
    expect((await get('/v1/catalog/services', '10.0.0.11', READ)).statusCode).toBe(200);
  });

  it('--auth-failure-limit 0 turns the limit off', async () => {
    const { get } = await open(0);
    for (let k = 0; k < 10; k++) expect((await get('/v1/catalog/services', '10.0.0.9', WRONG)).statusCode).toBe(403);
    expect((await get('/v1/catalog/services', '10.0.0.9', READ)).statusCode).toBe(200);
  });

  it('audits every refused request with the token name, route, address and result, never a secret', async () => {
    const { get, audit, raw } = await open(2);
    expect((await get('/v1/health/service/web', '10.0.0.9', READ)).statusCode).toBe(200);
    expect((await get('/v1/health/service/web', '10.0.0.9', PROD)).statusCode).toBe(403);
    expect((await get('/v1/health/service/web', '10.0.0.9', WRONG)).statusCode).toBe(403);
    expect((await get('/v1/health/service/web', '10.0.0.9', WRONG)).statusCode).toBe(403);
    expect((await get('/v1/health/service/web', '10.0.0.9', READ)).statusCode).toBe(429);
    const lines = audit();
    expect(lines.map((l) => [l.principal, l.route, l.remote, l.status, l.result])).toEqual([
      ['token#1', '/v1/health/service/:service', '10.0.0.9', 403, 'refused'],
      [null, '/v1/health/service/:service', '10.0.0.9', 403, 'refused'],
      [null, '/v1/health/service/:service', '10.0.0.9', 403, 'refused'],
      [null, '/v1/health/service/:service', '10.0.0.9', 429, 'refused'],
    ]);
    const all = raw.join('');
    for (const secret of [READ, PROD, WRONG]) expect(all).not.toContain(secret);
  });
});

describe('Consul listener with service-prefix tokens (--acl)', () => {
  let consul: ConsulApp | undefined;
  afterEach(async () => {
    await consul?.app.close();
  });

  it('a prefix-scoped token reads the services in scope, never another, a shared answer another token warmed included', async () => {
    const node = await InMemoryNodeApi.create();
    node.apply({ type: 'register', namespace: 'default', service: 'web-a', id: 'w1', address: '10.0.0.1', port: 80 });
    node.apply({ type: 'register', namespace: 'default', service: 'api', id: 'a1', address: '10.0.0.2', port: 80 });
    const access = new AccessControl(null, null);
    const principals: Record<string, Principal> = {
      [READ]: { name: 'reader', role: 'read', namespaces: null, servicePrefixes: null },
      [PROD]: { name: 'web-only', role: 'read', namespaces: null, servicePrefixes: ['web-'] },
    };
    access.identify = async (token: string) => {
      const principal = principals[token];
      return principal === undefined ? { ok: false, reason: 'unknown' } : { ok: true, principal };
    };
    consul = buildConsulApp({ node, logger: silentLogger(), tokens: access });
    const get = (url: string, token: string) =>
      consul!.app.inject({ method: 'GET', url, headers: { 'x-consul-token': token } });
    for (const route of ['/v1/health/service/', '/v1/catalog/service/', '/v1/health/checks/']) {
      // Warmed by the unlimited token: the same service, variant and index are in the shared cache.
      const warmed = await get(`${route}api`, READ);
      expect(warmed.statusCode).toBe(200);
      const index = warmed.headers['x-consul-index'];
      for (const u of [`${route}api`, `${route}api?index=${index}&wait=1s`]) {
        const scoped = await get(u, PROD);
        expect([scoped.statusCode, scoped.body]).toEqual([
          403,
          'Permission denied: token web-only is limited to services starting with web-, not api',
        ]);
      }
      const own = await get(`${route}web-a`, PROD);
      expect(own.statusCode).toBe(200);
      expect(own.body).toContain('w1');
    }
    expect(consul.feed.answers.size).toBeGreaterThan(0);
    // Listings: only the services in scope.
    expect((await get('/v1/catalog/services', PROD)).json()).toEqual({ 'web-a': [] });
    expect(Object.keys((await get('/v1/agent/services', PROD)).json())).toEqual(['w1']);
    expect(Object.keys((await get('/v1/agent/services', READ)).json()).sort()).toEqual(['a1', 'w1']);
    expect(
      ((await get('/v1/health/state/any', PROD)).json() as { ServiceID: string }[]).map((c) => c.ServiceID),
    ).toEqual(['w1']);
    expect((await get('/v1/agent/service/a1', PROD)).statusCode).toBe(403);
    expect((await get('/v1/agent/service/w1', PROD)).statusCode).toBe(200);
    // Nodes span services: not scoped, still refused.
    expect((await get('/v1/catalog/nodes', PROD)).statusCode).toBe(403);
  });
});

describe("Consul listener with service-prefix tokens: another datacenter's listings (?dc=)", () => {
  it("filters the other datacenter's namespace listing to the services in scope", async () => {
    const listed = ['api', 'web-a'].map((service, k) => ({
      id: `${service}-1`,
      namespace: 'default',
      service,
      cluster: 'default',
      address: `10.1.0.${k + 1}`,
      port: 80,
      weight: 1,
      tags: [`t-${service}`],
      metadata: {},
      health: 'healthy',
      enabled: true,
      ephemeral: false,
      createRevision: 3,
      modRevision: 3,
      version: 1,
    }));
    // dc-b's member: the native namespace listing, whatever the token (it checks its own tokens).
    const member = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://dc-b').pathname;
      const ok = path === '/v1/namespaces/default/instances';
      res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json', 'x-rollcall-index': '3' });
      res.end(JSON.stringify(ok ? { revision: 3, instances: listed } : { error: { code: 'NOT_FOUND' } }));
    });
    await new Promise<void>((resolve) => member.listen(0, '127.0.0.1', resolve));
    const address = `http://127.0.0.1:${(member.address() as AddressInfo).port}`;
    const access = new AccessControl(null, null);
    const principals: Record<string, Principal> = {
      [READ]: { name: 'reader', role: 'read', namespaces: null, servicePrefixes: null },
      [PROD]: { name: 'web-only', role: 'read', namespaces: null, servicePrefixes: ['web-'] },
    };
    access.identify = async (token: string) => {
      const principal = principals[token];
      return principal === undefined ? { ok: false, reason: 'unknown' } : { ok: true, principal };
    };
    const consul = buildConsulApp({
      node: await InMemoryNodeApi.create(),
      logger: silentLogger(),
      tokens: access,
      datacenter: 'dc-a',
      federation: {
        route: (dc) => (dc === 'dc-b' ? { members: [{ address }] } : null),
        datacentersByRtt: () => ['dc-a', 'dc-b'],
        hopHeader: (method, url) => `dc-a.1.${method}:${url}`,
      },
    });
    const get = (url: string, token: string) =>
      consul.app.inject({ method: 'GET', url, headers: { 'x-consul-token': token } });
    try {
      expect((await get('/v1/catalog/services?dc=dc-b', READ)).json()).toEqual({
        api: ['t-api'],
        'web-a': ['t-web-a'],
      });
      expect((await get('/v1/catalog/services?dc=dc-b', PROD)).json()).toEqual({ 'web-a': ['t-web-a'] });
      const checks = (await get('/v1/health/state/any?dc=dc-b', PROD)).json() as { ServiceName: string }[];
      expect(checks.map((c) => c.ServiceName)).toEqual(['web-a']);
      expect((await get('/v1/catalog/nodes?dc=dc-b', PROD)).statusCode).toBe(403);
    } finally {
      await consul.app.close();
      member.closeAllConnections();
      await new Promise<void>((resolve) => member.close(() => resolve()));
    }
  });
});

describe('Consul GET /v1/acl/token/self', () => {
  it('describes a --token-file token; ACL not found for an unknown one; ACL support disabled with auth off', async () => {
    const node = await InMemoryNodeApi.create();
    const tokens = TokenAuthority.parse(
      JSON.stringify([{ token: PROD, role: 'read', namespaces: ['prod'], name: 'prod-ro' }]),
    );
    const on = buildConsulApp({ node, logger: silentLogger(), tokens });
    const off = buildConsulApp({ node, logger: silentLogger() });
    try {
      const me = await on.app.inject({ method: 'GET', url: '/v1/acl/token/self', headers: { 'x-consul-token': PROD } });
      expect(me.statusCode).toBe(200);
      expect(me.json()).toEqual({
        AccessorID: '',
        SecretID: '<hidden>',
        Description: 'prod-ro',
        Policies: [{ ID: 'rollcall-read', Name: 'rollcall-read' }],
        Roles: [],
        ServiceIdentities: [],
        NodeIdentities: [],
        Local: true,
        CreateIndex: 0,
        ModifyIndex: 0,
        Rollcall: { name: 'prod-ro', role: 'read', namespaces: ['prod'], source: 'token-file' },
      });
      const wrong = await on.app.inject({ method: 'GET', url: `/v1/acl/token/self?token=${WRONG}` });
      expect([wrong.statusCode, wrong.body]).toEqual([403, 'ACL not found']);
      const disabled = await off.app.inject({ method: 'GET', url: '/v1/acl/token/self' });
      expect([disabled.statusCode, disabled.body]).toEqual([401, 'ACL support disabled']);
    } finally {
      await Promise.all([on.app.close(), off.app.close()]);
    }
  });
});
