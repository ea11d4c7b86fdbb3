/**
 * A token limited to service prefixes may act on a session only where its prefixes reach,
 * as a namespace-limited token only where its namespaces do (src/server/session-scope.ts):
 * keepalive, close (which deletes the session's instances) and registering under a session
 * that holds an instance of a service outside the prefixes are 403 FORBIDDEN and change
 * nothing; the refusal does not name the other service. Consul TTL checks' sessions have
 * ids anyone can work out (`consul:<ns>:service:<id>`), so without this a `web-` token
 * could close the session of an `orders` instance and delete it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionIdForCheck } from '../src/consul/check-record.js';
import { type TestApp, testApp } from './api-helpers.js';
import { sessionRoutes } from './helpers/session-routes.js';

let WEB = '';
let ALL = '';
const as = (token: string) => ({ authorization: `Bearer ${token}` });

let t: TestApp;
const { open, bind: bindIn, state, keepalive, close, register: registerIn } = sessionRoutes(() => t, as);
const bind = (service: string, id: string, sessionId: string) => bindIn('default', service, id, sessionId);
const register = (service: string, id: string, sessionId: string, token: string) =>
  registerIn('default', service, id, sessionId, token);
/** The session of a Consul TTL check of an orders instance: its id is no secret. */
const ORDERS_SESSION = sessionIdForCheck('default', 'service:orders-1');

beforeAll(async () => {
  t = await testApp({ acl: true });
  const boot = await t.req({ method: 'POST', url: '/v1/acl/bootstrap' });
  expect(boot.status, boot.text).toBe(201);
  const token = async (body: object): Promise<string> => {
    const r = await t.req({ method: 'POST', url: '/v1/acl/tokens', headers: as(boot.body.secret), payload: body });
    expect(r.status, r.text).toBe(201);
    return r.body.secret as string;
  };
  WEB = await token({ name: 'reg-web', role: 'register', servicePrefixes: ['web-'] });
  ALL = await token({ name: 'reg-all', role: 'register' });
  open(ORDERS_SESSION);
  bind('orders', 'orders-1', ORDERS_SESSION);
  open('web-session');
  bind('web-a', 'web-a-1', 'web-session');
});
afterAll(async () => {
  await t?.close();
});

describe('session routes check the session against a service-prefix token', () => {
  it('refuses a web- token the session of an orders instance, and changes nothing (prefix_token_closes_other_service_session)', async () => {
    const before = state();
    const refused = [
      ['keepalive', await keepalive(ORDERS_SESSION, WEB)],
      ['close', await close(ORDERS_SESSION, WEB)],
      ['register under it', await register('web-b', 'web-b-1', ORDERS_SESSION, WEB)],
    ] as const;
    for (const [what, res] of refused) {
      expect([what, res.status, res.body?.error?.code], res.text).toEqual([what, 403, 'FORBIDDEN']);
      expect(res.body.error.message).toMatch(/^token reg-web is limited to services starting with web-; session /);
      // The refusal does not name the other service (the session id is the caller's own words).
      expect(res.body.error.message.replace(ORDERS_SESSION, '')).not.toContain('orders');
    }
    expect(state()).toBe(before);
    expect(t.node.registry.getInstance('default', 'orders', 'orders-1')).toBeDefined();
  });

  it('lets it act on a session of its own services, and an unlimited token on every one', async () => {
    expect((await keepalive('web-session', WEB)).status).toBe(200);
    expect((await keepalive(ORDERS_SESSION, ALL)).status).toBe(200);
    expect((await close('web-session', WEB)).body).toEqual({ revision: expect.any(Number), deleted: 1 });
  });
});
