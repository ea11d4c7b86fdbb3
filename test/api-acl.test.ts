/**
 * --acl in one process (buildApp over InMemoryNodeApi): the bootstrap gate, break-glass
 * --token-file tokens before and after bootstrap, service-prefix scopes, the ACL routes on a
 * node without --acl (token self with --token-file only), and failed-auth limiting.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import { buildApp } from '../src/server/app.js';
import { TokenAuthority } from '../src/server/auth.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const BREAK_GLASS = 'break-glass-0123456789abcdef';
let app: FastifyInstance;

async function start(options: { acl: boolean; file?: boolean; authFailureLimit?: number }): Promise<FastifyInstance> {
  const tokens = options.file
    ? TokenAuthority.parse(JSON.stringify([{ token: BREAK_GLASS, role: 'admin', name: 'break-glass' }]))
    : null;
  app = buildApp({
    node: await InMemoryNodeApi.create(),
    logger: silentLogger(),
    tokens,
    acl: options.acl,
    authFailureLimit: options.authFailureLimit ?? 30,
  });
  await app.ready();
  return app;
}
afterEach(async () => {
  await app?.close();
});

const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, secret?: string, body?: unknown) =>
  app.inject({
    method,
    url,
    headers: {
      ...(secret === undefined ? {} : { authorization: `Bearer ${secret}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
  });

describe('--acl in process', () => {
  it('before bootstrap only probes, /openapi.json and the bootstrap answer; break-glass tokens work throughout', async () => {
    await start({ acl: true, file: true });
    const refused = await call('GET', '/v1/cluster');
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.message).toMatch(/POST \/v1\/acl\/bootstrap/);
    expect((await call('GET', '/openapi.json')).statusCode).toBe(200);
    expect((await call('GET', '/healthz')).statusCode).toBe(200);
    expect((await call('GET', '/v1/cluster', BREAK_GLASS)).statusCode).toBe(200);
    const made = await call('POST', '/v1/acl/tokens', BREAK_GLASS, { name: 'early', role: 'read' });
    expect(made.statusCode).toBe(201);
    const boot = await call('POST', '/v1/acl/bootstrap');
    expect(boot.statusCode).toBe(201);
    expect(boot.json()).toMatchObject({ role: 'admin', name: 'bootstrap' });
    expect(boot.json().secret).toMatch(/^rc_[A-Za-z0-9_-]{43}$/);
    expect((await call('POST', '/v1/acl/bootstrap')).json().error.code).toBe('ACL_BOOTSTRAPPED');
    expect((await call('GET', '/v1/cluster', made.json().secret)).statusCode).toBe(200);
    expect((await call('GET', '/v1/cluster', BREAK_GLASS)).statusCode).toBe(200);
    const listed = await call('GET', '/v1/acl/tokens', boot.json().secret);
    expect(
      listed
        .json()
        .tokens.map((t: { name: string }) => t.name)
        .sort(),
    ).toEqual(['bootstrap', 'early']);
    expect(listed.body).not.toContain('secret');
    expect((await call('DELETE', '/v1/acl/tokens/nope', boot.json().secret)).json().error.code).toBe('TOKEN_NOT_FOUND');
  });

  it('service prefixes: a service-named route must match; a route across services is refused', async () => {
    await start({ acl: true });
    const admin = (await call('POST', '/v1/acl/bootstrap')).json().secret as string;
    const t = (
      await call('POST', '/v1/acl/tokens', admin, { name: 'pay', role: 'read', servicePrefixes: ['pay'] })
    ).json().secret as string;
    expect((await call('GET', '/v1/namespaces/prod/services/payments/instances', t)).statusCode).toBe(200);
    expect((await call('GET', '/v1/namespaces/prod/services/orders/instances', t)).statusCode).toBe(403);
    expect((await call('GET', '/v1/namespaces/prod/instances', t)).statusCode).toBe(403);
    expect((await call('GET', '/v1/cluster', t)).statusCode).toBe(200); // not namespaced
    expect((await call('POST', '/v1/acl/tokens', admin, { name: 'x', role: 'root' })).statusCode).toBe(400);
    expect((await call('POST', '/v1/acl/tokens', t, { name: 'x', role: 'read' })).statusCode).toBe(403);
  });

  it('without --acl the ACL routes answer 409 ACL_OFF and nothing needs a token', async () => {
    await start({ acl: false });
    expect((await call('GET', '/v1/cluster')).statusCode).toBe(200);
    const r = await call('POST', '/v1/acl/bootstrap');
    expect(r.statusCode).toBe(409);
    expect(r.json().error.code).toBe('ACL_OFF');
  });

  it('GET /v1/acl/token/self: 409 ACL_OFF where no token is checked; --token-file tokens without --acl', async () => {
    await start({ acl: false });
    const off = await call('GET', '/v1/acl/token/self');
    expect([off.statusCode, off.json().error.code]).toEqual([409, 'ACL_OFF']);
    await app.close();
    await start({ acl: false, file: true });
    const me = await call('GET', '/v1/acl/token/self', BREAK_GLASS);
    expect([me.statusCode, me.json()]).toEqual([200, { name: 'break-glass', role: 'admin', source: 'token-file' }]);
    expect((await call('GET', '/v1/acl/token/self')).statusCode).toBe(401);
    expect((await call('GET', '/v1/acl/token/self', 'rc_not-a-token-0123456789')).statusCode).toBe(401);
    // Listed in the API description, open to any valid token.
    const op = (await call('GET', '/openapi.json')).json().paths['/v1/acl/token/self'].get;
    expect([op.operationId, op['x-rollcall-role']]).toEqual(['tokenSelf', 'token']);
  });

  it('failed authentications past the limit get 429 with Retry-After, even with a valid token', async () => {
    await start({ acl: true, authFailureLimit: 2 });
    const admin = (await call('POST', '/v1/acl/bootstrap')).json().secret as string;
    expect((await call('GET', '/v1/cluster', 'rc_bad1')).statusCode).toBe(401);
    expect((await call('GET', '/v1/cluster')).statusCode).toBe(401); // no token: not counted
    expect((await call('GET', '/v1/cluster', 'rc_bad2')).statusCode).toBe(401);
    const limited = await call('GET', '/v1/cluster', admin);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await call('GET', '/healthz')).statusCode).toBe(200);
  });
});
