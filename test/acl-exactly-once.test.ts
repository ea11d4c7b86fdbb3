/**
 * Token writes are exactly-once like every write (docs/api.md "Exactly-once writes"): a
 * retry with the same x-rollcall-client-id and x-rollcall-seq creates no second token, a
 * retried bootstrap says clearly that the first one made the token, a retried revoke answers
 * as the first did. In one process (buildApp over InMemoryNodeApi: the real state machine).
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import { buildApp } from '../src/server/app.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

let app: FastifyInstance;

afterEach(async () => {
  await app?.close();
});

async function start(): Promise<FastifyInstance> {
  app = buildApp({ node: await InMemoryNodeApi.create(), logger: silentLogger(), tokens: null, acl: true });
  await app.ready();
  return app;
}

const call = (
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  options: { secret?: string; body?: unknown; client?: [string, number] } = {},
) =>
  app.inject({
    method,
    url,
    headers: {
      ...(options.secret === undefined ? {} : { authorization: `Bearer ${options.secret}` }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.client === undefined
        ? {}
        : { 'x-rollcall-client-id': options.client[0], 'x-rollcall-seq': String(options.client[1]) }),
    },
    ...(options.body === undefined ? {} : { payload: JSON.stringify(options.body) }),
  });

describe('token writes with exactly-once ids', () => {
  it('a retried bootstrap creates nothing and answers 409 naming the token the first one made', async () => {
    await start();
    const first = await call('POST', '/v1/acl/bootstrap', { client: ['ops-laptop', 1] });
    expect(first.statusCode).toBe(201);
    const retry = await call('POST', '/v1/acl/bootstrap', { client: ['ops-laptop', 1] });
    expect(retry.statusCode).toBe(409);
    expect(retry.json().error).toMatchObject({
      code: 'ACL_BOOTSTRAPPED',
      replayed: true,
      id: first.json().id,
      revision: first.json().createRevision,
    });
    expect(retry.json().error.message).toMatch(/applied before/);
    expect(retry.body).not.toContain('rc_');
    const admin = first.json().secret as string;
    const listed = await call('GET', '/v1/acl/tokens', { secret: admin });
    expect(listed.json().tokens.map((t: { id: string }) => t.id)).toEqual([first.json().id]);
  });

  it('a retried create makes no second token; a retried revoke answers as the first did', async () => {
    await start();
    const admin = (await call('POST', '/v1/acl/bootstrap')).json().secret as string;
    const body = { name: 'dashboards', role: 'read' };
    const first = await call('POST', '/v1/acl/tokens', { secret: admin, body, client: ['cli-1', 7] });
    expect(first.statusCode).toBe(201);
    const retry = await call('POST', '/v1/acl/tokens', { secret: admin, body, client: ['cli-1', 7] });
    expect(retry.statusCode).toBe(409);
    expect(retry.json().error).toMatchObject({ code: 'TOKEN_EXISTS', replayed: true, id: first.json().id });
    expect(retry.body).not.toContain('rc_');
    const names = (await call('GET', '/v1/acl/tokens', { secret: admin }))
      .json()
      .tokens.map((t: { name: string }) => t.name);
    expect(names.filter((n: string) => n === 'dashboards')).toHaveLength(1);
    // The first answer's secret is the one that works.
    expect((await call('GET', '/v1/cluster', { secret: first.json().secret })).statusCode).toBe(200);
    // A lower seq of the same client was answered before: STALE_REQUEST, nothing created.
    const stale = await call('POST', '/v1/acl/tokens', { secret: admin, body, client: ['cli-1', 6] });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error.code).toBe('STALE_REQUEST');

    const url = `/v1/acl/tokens/${first.json().id}`;
    const revoked = await call('DELETE', url, { secret: admin, client: ['cli-1', 8] });
    expect(revoked.statusCode).toBe(200);
    const again = await call('DELETE', url, { secret: admin, client: ['cli-1', 8] });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(revoked.json());
    // Without ids a second revoke is a new request: the token is gone.
    expect((await call('DELETE', url, { secret: admin })).json().error.code).toBe('TOKEN_NOT_FOUND');
  });

  it('a malformed x-rollcall-seq is refused with 400 before anything is proposed', async () => {
    await start();
    const r = await app.inject({
      method: 'POST',
      url: '/v1/acl/bootstrap',
      headers: { 'x-rollcall-client-id': 'c', 'x-rollcall-seq': 'zero' },
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().error.field).toBe('x-rollcall-seq');
    expect((await call('POST', '/v1/acl/bootstrap')).statusCode).toBe(201);
  });
});
