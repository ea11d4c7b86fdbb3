/**
 * Issue 22 item 3: a namespace-limited token may act on a session only where its
 * namespaces reach. A session belongs to the namespaces of its instances (etcd's rule for
 * leases: revoking or attaching to a lease needs write access to every key on it), so
 * keepalive (with or without a report), close, and registering an instance under the
 * session all answer 403 FORBIDDEN when the session holds an instance outside the
 * token's namespaces, and change nothing. A session without instances is open to any
 * register token (it has no namespace yet); unlimited tokens reach every session.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenAuthority } from '../src/server/auth.js';
import { type TestApp, testApp } from './api-helpers.js';
import { sessionRoutes } from './helpers/session-routes.js';

const TOKENS = {
  regA: 'register-a-token-0000000000',
  regB: 'register-b-token-0000000000',
  regAB: 'register-ab-token-000000000',
  regAll: 'register-all-token-0000000',
  adminA: 'admin-a-token-000000000000',
  admin: 'admin-token-00000000000000',
};
const authority = TokenAuthority.parse(
  JSON.stringify([
    { token: TOKENS.regA, role: 'register', namespaces: ['a'], name: 'reg-a' },
    { token: TOKENS.regB, role: 'register', namespaces: ['b'], name: 'reg-b' },
    { token: TOKENS.regAB, role: 'register', namespaces: ['a', 'b'], name: 'reg-ab' },
    { token: TOKENS.regAll, role: 'register', name: 'reg-all' },
    { token: TOKENS.adminA, role: 'admin', namespaces: ['a'], name: 'admin-a' },
    { token: TOKENS.admin, role: 'admin', name: 'ops' },
  ]),
);
type Who = keyof typeof TOKENS;
const as = (who: Who) => ({ authorization: `Bearer ${TOKENS[who]}` });

let t: TestApp;
const { open, bind: bindIn, state, keepalive, close, register: registerIn } = sessionRoutes(() => t, as);
const bind = (ns: string, id: string, sessionId: string) => bindIn(ns, 'svc', id, sessionId);
const register = (ns: string, id: string, sessionId: string, who: Who) => registerIn(ns, 'svc', id, sessionId, who);

beforeAll(async () => {
  t = await testApp({ tokens: authority });
  open('sb'); // b's session, with an instance in b
  bind('b', 'b1', 'sb');
  open('sab'); // one session with instances in a and in b
  bind('a', 'a1', 'sab');
  bind('b', 'b2', 'sab');
  open('empty'); // no instance yet
});
afterAll(async () => {
  await t?.close();
});

const REPORT = { report: { successRatio: 0.1, cpu: 0.99 } };
describe('session routes check the session against the token', () => {
  it('refuses a token limited to a the keepalive, keepalive with a report, close and register-under of a session of b, and changes nothing', async () => {
    const before = state();
    const revision = t.node.registry.revision;
    const refused = [
      ['keepalive', await keepalive('sb', 'regA')],
      ['keepalive with a report', await keepalive('sb', 'regA', REPORT)],
      ['close', await close('sb', 'regA')],
      ['register under it', await register('a', 'a9', 'sb', 'regA')],
      ['close (admin limited to a)', await close('sb', 'adminA')],
    ] as const;
    for (const [what, res] of refused) {
      expect([what, res.status, res.body?.error?.code], res.text).toEqual([what, 403, 'FORBIDDEN']);
      expect(res.body.error.message).toMatch(
        /^token (reg-a|admin-a) is limited to namespaces a; session sb has instances outside them/,
      );
      // The refusal does not name the other namespace.
      expect(res.body.error.message).not.toMatch(/\bb\b/);
    }
    expect(t.node.registry.revision).toBe(revision);
    expect(state()).toBe(before);
    expect(t.node.registry.getSession('sb')).toBeDefined();
  });

  it('needs every namespace of a session that spans several', async () => {
    for (const who of ['regA', 'regB'] as const) {
      expect((await keepalive('sab', who)).status).toBe(403);
      expect((await close('sab', who)).status).toBe(403);
    }
    expect((await keepalive('sab', 'regAB', REPORT)).status).toBe(200);
    expect((await keepalive('sab', 'regAll')).status).toBe(200);
  });

  it('lets the owner namespace, unlimited tokens and admins through', async () => {
    expect((await keepalive('sb', 'regB')).status).toBe(200);
    expect((await keepalive('sb', 'regB', REPORT)).status).toBe(200);
    expect((await keepalive('sb', 'regAll')).status).toBe(200);
    expect((await keepalive('sb', 'admin')).status).toBe(200);
    const res = await register('b', 'b3', 'sb', 'regB');
    expect(res.status, res.text).toBe(200);
    expect((await close('sb', 'regB')).body).toEqual({ revision: expect.any(Number), deleted: 2 });
  });

  it('leaves a session without instances to any register token, and it then belongs to its first instance', async () => {
    expect((await keepalive('empty', 'regA')).status).toBe(200);
    expect((await keepalive('empty', 'regB')).status).toBe(200);
    expect((await register('a', 'a2', 'empty', 'regA')).status).toBe(200);
    // Now a session of a: b can neither keep it alive, close it nor attach to it.
    expect((await keepalive('empty', 'regB')).status).toBe(403);
    expect((await register('b', 'b4', 'empty', 'regB')).status).toBe(403);
    expect((await close('empty', 'regB')).status).toBe(403);
    expect((await close('empty', 'regA')).status).toBe(200);
  });

  it('answers 404 for a session that does not exist, whatever the token', async () => {
    expect((await keepalive('nope', 'regA')).body.error.code).toBe('SESSION_NOT_FOUND');
    expect((await close('nope', 'regA')).body.error.code).toBe('SESSION_NOT_FOUND');
  });
});
