/**
 * A token limited to service prefixes on the Consul routes that find their service by an
 * instance ID or a check ID (src/consul/agent-routes.ts, ttl-checks.ts), in one process over
 * a real Registry:
 *
 * - An ID that another service, outside the token's prefixes, also uses (Rollcall IDs are
 *   unique only within a service) is the token's own instance: answered and deregistered,
 *   not a 400 that names the other service.
 * - A check update is held to the instances the check's session holds after the read
 *   barrier, not only before it: an instance of another service that reached this node
 *   while the barrier ran (this node was behind) is not settled by the token.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readRecord } from '../src/consul/check-record.js';
import { buildConsulApp, type ConsulApp } from '../src/consul/index.js';
import { silentLogger } from '../src/log/index.js';
import { AccessControl } from '../src/server/acl.js';
import type { Principal } from '../src/server/auth.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const ADMIN = 'admin-token-0123456789';
const WEB = 'web-writer-token-0123456789';
const WEB_READER = 'web-reader-token-0123456789';

const PRINCIPALS: Record<string, Principal> = {
  [ADMIN]: { name: 'admin', role: 'admin', namespaces: null, servicePrefixes: null },
  [WEB]: { name: 'web-writer', role: 'register', namespaces: null, servicePrefixes: ['web-'] },
  [WEB_READER]: { name: 'web-reader', role: 'read', namespaces: null, servicePrefixes: ['web-'] },
};

describe('Consul routes that find their service, with a service-prefix token', () => {
  let consul: ConsulApp | undefined;
  afterEach(async () => {
    await consul?.app.close();
  });

  const open = async () => {
    const node = await InMemoryNodeApi.create();
    const access = new AccessControl(null, null);
    access.identify = async (token: string) => {
      const principal = PRINCIPALS[token];
      return principal === undefined ? { ok: false, reason: 'unknown' } : { ok: true, principal };
    };
    consul = buildConsulApp({ node, logger: silentLogger(), tokens: access });
    const call = (method: 'GET' | 'PUT', url: string, token: string, payload?: object) =>
      consul!.app.inject({ method, url, headers: { 'x-consul-token': token }, ...(payload ? { payload } : {}) });
    return { node, call };
  };

  it('an ID another service shares is the token own instance (prefix_token_id_shared_with_hidden_service)', async () => {
    const { node, call } = await open();
    for (const service of ['orders', 'web-a'])
      node.apply({ type: 'register', namespace: 'default', service, id: 'x1', address: '10.0.0.1', port: 80 });

    const read = await call('GET', '/v1/agent/service/x1', WEB_READER);
    expect([read.statusCode, read.body]).toEqual([200, expect.stringContaining('"Service":"web-a"')]);
    expect(read.body).not.toContain('orders');
    // An unlimited token sees both, and is told the ID is ambiguous.
    expect((await call('GET', '/v1/agent/service/x1', ADMIN)).statusCode).toBe(400);

    const gone = await call('PUT', '/v1/agent/service/deregister/x1', WEB);
    expect([gone.statusCode, gone.body]).toEqual([200, '']);
    expect(node.registry.getInstance('default', 'web-a', 'x1')).toBeUndefined();
    expect(node.registry.getInstance('default', 'orders', 'x1')).toBeDefined();
  });

  it('an ID only a hidden service uses is still refused (403), as before', async () => {
    const { node, call } = await open();
    node.apply({ type: 'register', namespace: 'default', service: 'orders', id: 'o1', address: '10.0.0.1', port: 80 });
    node.apply({
      type: 'register',
      namespace: 'default',
      service: 'payments',
      id: 'o1',
      address: '10.0.0.2',
      port: 80,
    });
    for (const [method, url, token] of [
      ['GET', '/v1/agent/service/o1', WEB_READER],
      ['PUT', '/v1/agent/service/deregister/o1', WEB],
    ] as const) {
      const r = await call(method, url, token);
      expect(r.statusCode, r.body).toBe(403);
      expect(r.body).toMatch(/^Permission denied: token web-(reader|writer) is limited to services starting with web-/);
    }
    expect(node.registry.getInstance('default', 'orders', 'o1')).toBeDefined();
    expect(node.registry.getInstance('default', 'payments', 'o1')).toBeDefined();
  });

  it('a check update is held to what the session holds after the read barrier (check_scope_after_barrier)', async () => {
    const { node, call } = await open();
    // The check of a service outside the token's prefixes, registered through this listener.
    const reg = await call('PUT', '/v1/agent/service/register', ADMIN, {
      Name: 'orders',
      ID: 'o1',
      Address: '10.0.0.1',
      Port: 80,
      Check: { CheckID: 'c1', TTL: '30s' },
    });
    expect(reg.statusCode, reg.body).toBe(200);
    const registered = node.registry.getInstance('default', 'orders', 'o1')!;
    expect(registered.health).toBe('down');
    // This node is behind: it has the check's session but not yet the instance on it, which
    // the read barrier brings in (as a follower catching up with the leader does).
    node.apply({ type: 'unregister', namespace: 'default', service: 'orders', id: 'o1' });
    const { namespace, service, id, address, port, tags, metadata, sessionId } = registered;
    node.readBarrier = async () => {
      if (node.registry.getInstance('default', 'orders', 'o1') === undefined)
        node.apply({
          type: 'register',
          namespace,
          service,
          id,
          address,
          port,
          tags: [...tags],
          metadata: { ...metadata },
          ...(sessionId === null ? {} : { sessionId }),
        });
      return node.registry.appliedIndex;
    };

    const pass = await call('PUT', '/v1/agent/check/pass/c1', WEB);
    expect(pass.statusCode, pass.body).toBe(403);
    // Its check's record is as registered (critical): the token changed nothing of it.
    expect(readRecord(node.registry.getInstance('default', 'orders', 'o1')!).check?.status).toBe('critical');
  });
});
