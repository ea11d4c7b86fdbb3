/**
 * The Consul-compatible API in one process, over a real Registry without Raft (InMemoryNodeApi):
 * tokens and namespaces, the health mapping end to end (leader-set health, expiry
 * protection's suspect, disabled instances), re-registration, and blocking queries woken
 * only by what they read.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildConsulApp, type ConsulApp } from '../src/consul/index.js';
import { silentLogger } from '../src/log/index.js';
import { TokenAuthority } from '../src/server/auth.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const READ = 'read-token-0123456789';
const WRITE = 'register-token-0123456789';
const PROD = 'prod-only-token-0123456789';

describe('Consul API in process', () => {
  let node: InMemoryNodeApi;
  let consul: ConsulApp;

  const start = (tokens: TokenAuthority | null = null) => {
    consul = buildConsulApp({ node, logger: silentLogger(), tokens, maxWaitMs: 5000 });
    return consul.app;
  };
  const put = (url: string, body?: unknown, headers: Record<string, string> = {}) =>
    consul.app.inject({
      method: 'PUT',
      url,
      headers,
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
  const get = (url: string, headers: Record<string, string> = {}) => consul.app.inject({ method: 'GET', url, headers });
  const ids = (r: { json: () => unknown }) => (r.json() as { Service: { ID: string } }[]).map((e) => e.Service.ID);

  beforeEach(async () => {
    node = await InMemoryNodeApi.create();
  });
  afterEach(async () => {
    await consul?.app.close();
  });

  it('answers index 1, not 0, and [] / {} on an empty registry', async () => {
    start();
    for (const url of [
      '/v1/health/service/none',
      '/v1/catalog/service/none',
      '/v1/catalog/nodes',
      '/v1/health/state/any',
      '/v1/health/checks/none',
    ]) {
      const r = await get(url);
      expect(r.statusCode).toBe(200);
      expect(r.headers['x-consul-index']).toBe('1');
      expect(r.json()).toEqual([]);
    }
    const s = await get('/v1/catalog/services');
    expect(s.json()).toEqual({});
    expect(s.headers['x-consul-index']).toBe('1');
  });

  it('maps health: subhealthy is warning, down critical, suspect passing; disabled instances are left out', async () => {
    start();
    for (const id of ['a', 'b', 'c', 'd', 'e'])
      expect(
        (
          await put('/v1/agent/service/register', {
            Name: 'web',
            ID: id,
            Address: `10.0.0.${id.charCodeAt(0)}`,
            Port: 80,
          })
        ).statusCode,
      ).toBe(200);
    node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'web', id: 'b', health: 'subhealthy' });
    node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'web', id: 'c', health: 'down' });
    // Expiry protection marks the instances of a session suspect: open one, bind d, mark it.
    node.apply({ type: 'openSession', sessionId: 's1', ttlMs: 5000, now: 0 });
    node.apply({ type: 'unregister', namespace: 'default', service: 'web', id: 'd' });
    node.apply({
      type: 'register',
      namespace: 'default',
      service: 'web',
      id: 'd',
      address: '10.0.0.100',
      port: 80,
      sessionId: 's1',
    });
    node.apply({ type: 'markSuspect', term: 1, sessionIds: ['s1'], now: 1 });
    expect(node.registry.getInstance('default', 'web', 'd')?.health).toBe('suspect');
    const e = node.registry.getInstance('default', 'web', 'e')!;
    node.apply({
      type: 'update',
      namespace: 'default',
      service: 'web',
      id: 'e',
      expectedVersion: e.version,
      patch: { enabled: false },
    });

    const all = (await get('/v1/health/service/web')).json() as {
      Service: { ID: string };
      Checks: { Status: string }[];
    }[];
    expect(all.map((x) => [x.Service.ID, x.Checks[0]!.Status])).toEqual([
      ['a', 'passing'],
      ['b', 'warning'],
      ['c', 'critical'],
      ['d', 'passing'],
    ]);
    expect(ids(await get('/v1/health/service/web?passing'))).toEqual(['a', 'd']);
    expect(ids(await get('/v1/health/service/web?passing=false'))).toEqual(['a', 'b', 'c', 'd']);
    expect((await get('/v1/health/state/warning')).json()).toEqual([
      expect.objectContaining({ ServiceID: 'b', Status: 'warning' }),
    ]);
    expect(Object.keys((await get('/v1/agent/services')).json() as object)).toEqual(['a', 'b', 'c', 'd']);
    expect((await get('/v1/agent/service/e')).statusCode).toBe(404);
  });

  it('takes tokens as X-Consul-Token, Authorization: Bearer and ?token=, with their roles and namespaces', async () => {
    start(
      TokenAuthority.parse(
        JSON.stringify([
          { token: READ, role: 'read' },
          { token: WRITE, role: 'register' },
          { token: PROD, role: 'register', namespaces: ['prod'] },
        ]),
      ),
    );
    const body = { Name: 'web', Port: 80, Address: '10.0.0.1' };
    const none = await put('/v1/agent/service/register', body);
    expect([none.statusCode, none.body]).toEqual([403, 'Permission denied: this node requires a token']);
    expect((await put('/v1/agent/service/register', body, { 'x-consul-token': 'unknown-token-0123456789' })).body).toBe(
      'ACL not found',
    );
    const readOnly = await put('/v1/agent/service/register', body, { 'x-consul-token': READ });
    expect(readOnly.statusCode).toBe(403);
    expect(readOnly.body).toMatch(/^Permission denied: token token#0 has role read/);
    expect((await put('/v1/agent/service/register', body, { 'x-consul-token': WRITE })).statusCode).toBe(200);
    expect((await get('/v1/health/service/web', { authorization: `Bearer ${READ}` })).statusCode).toBe(200);
    expect((await get(`/v1/health/service/web?token=${READ}`)).statusCode).toBe(200);
    // A namespace-limited token reaches its namespace through ?ns=, and only that.
    expect((await put('/v1/agent/service/register', body, { 'x-consul-token': PROD })).statusCode).toBe(403);
    expect((await put('/v1/agent/service/register?ns=prod', body, { 'x-consul-token': PROD })).statusCode).toBe(200);
    expect(node.registry.getInstance('prod', 'web', 'web')).toBeDefined();
    expect(ids(await get('/v1/health/service/web?ns=prod', { 'x-consul-token': READ }))).toEqual(['web']);
  });

  it('re-registration replaces, TTL check or not; an ID used by another service is refused', async () => {
    start();
    expect(
      (await put('/v1/agent/service/register', { Name: 'web', ID: 'w1', Address: '10.0.0.1', Port: 80 })).statusCode,
    ).toBe(200);
    expect(node.registry.getInstance('default', 'web', 'w1')?.sessionId).toBeNull();
    expect(
      (
        await put('/v1/agent/service/register', {
          Name: 'web',
          ID: 'w1',
          Address: '10.0.0.1',
          Port: 81,
          Check: { TTL: '10s', Status: 'passing' },
        })
      ).statusCode,
    ).toBe(200);
    const i = node.registry.getInstance('default', 'web', 'w1')!;
    expect([i.sessionId, i.port]).toEqual(['consul:default:service:w1', 81]);
    expect(node.registry.getSession('consul:default:service:w1')?.ttlMs).toBe(10_000);
    // Another TTL: a new session (a session's TTL cannot change).
    expect(
      (
        await put('/v1/agent/service/register', {
          Name: 'web',
          ID: 'w1',
          Address: '10.0.0.1',
          Port: 81,
          Check: { TTL: '20s' },
        })
      ).statusCode,
    ).toBe(200);
    expect(node.registry.getSession('consul:default:service:w1')?.ttlMs).toBe(20_000);
    const clash = await put('/v1/agent/service/register', { Name: 'api', ID: 'w1', Address: '10.0.0.1', Port: 80 });
    expect([clash.statusCode, clash.body]).toEqual([400, 'ID "w1" is already used by service web']);
    // Rollcall's own validation, with Consul's field names.
    const badId = await put('/v1/agent/service/register', {
      Name: 'web',
      ID: 'has space',
      Address: '10.0.0.1',
      Port: 80,
    });
    expect(badId.statusCode).toBe(400);
    expect(badId.body).toMatch(/^ID must be/);
    // Check update with Status and Output; deregister closes the check's session.
    expect((await put('/v1/agent/check/update/service:w1', { Status: 'warning', Output: 'slow' })).statusCode).toBe(
      200,
    );
    expect((await get('/v1/health/checks/web')).json()).toEqual([
      expect.objectContaining({ CheckID: 'service:w1', Status: 'warning', Output: 'slow', Type: 'ttl' }),
    ]);
    expect((await put('/v1/agent/check/update/service:w1', { Status: 'bogus' })).statusCode).toBe(400);
    expect((await put('/v1/agent/service/deregister/w1')).statusCode).toBe(200);
    expect(node.registry.getSession('consul:default:service:w1')).toBeUndefined();
  });

  it("a TTL check sets the instance's Rollcall health: warn subhealthy, fail down, pass healthy, in one change with its record", async () => {
    start();
    const health = () => node.registry.getInstance('default', 'web', 'w1')!.health;
    const revision = () => node.registry.revision;
    // A new TTL check is critical until its first pass, so the instance is down until then.
    expect(
      (
        await put('/v1/agent/service/register', {
          Name: 'web',
          ID: 'w1',
          Address: '10.0.0.1',
          Port: 80,
          Check: { TTL: '10s' },
        })
      ).statusCode,
    ).toBe(200);
    expect(health()).toBe('down');
    expect((await put('/v1/agent/check/pass/service:w1')).statusCode).toBe(200);
    expect(health()).toBe('healthy');
    // A steady stream of passes writes nothing.
    const settled = revision();
    for (let k = 0; k < 3; k++) await put('/v1/agent/check/pass/service:w1?note=ok');
    expect(revision()).toBe(settled);

    expect((await put('/v1/agent/check/warn/service:w1?note=slow')).statusCode).toBe(200);
    expect(health()).toBe('subhealthy');
    expect(revision()).toBe(settled + 1);
    expect((await get('/v1/health/checks/web')).json()).toEqual([
      expect.objectContaining({ Status: 'warning', Output: 'slow' }),
    ]);
    expect(ids(await get('/v1/health/service/web?passing'))).toEqual([]);
    expect((await put('/v1/agent/check/fail/service:w1?note=disk%20full')).statusCode).toBe(200);
    expect(health()).toBe('down');
    expect(
      (await put('/v1/agent/check/update/service:w1', { Status: 'passing', Output: 'x'.repeat(5000) })).statusCode,
    ).toBe(200);
    expect(health()).toBe('healthy');
    // Output is kept, cut to 1 KB (the record must fit a metadata value).
    expect(((await get('/v1/health/checks/web')).json() as { Output: string }[])[0]!.Output).toBe('x'.repeat(1024));

    // Health the check did not set (here the leader's, from reports) is brought back in line by the next check update.
    node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'web', id: 'w1', health: 'down' });
    expect((await put('/v1/agent/check/pass/service:w1')).statusCode).toBe(200);
    expect(health()).toBe('healthy');

    // Expiry protection owns a suspect instance: the record moves, the health stays suspect.
    node.apply({ type: 'markSuspect', term: 1, sessionIds: ['consul:default:service:w1'], now: 1 });
    expect((await put('/v1/agent/check/fail/service:w1')).statusCode).toBe(200);
    expect(health()).toBe('suspect');
    expect((await get('/v1/health/checks/web')).json()).toEqual([expect.objectContaining({ Status: 'critical' })]);
    // Once protection lets go, the next check update settles the health.
    node.apply({ type: 'clearSuspect', term: 1, sessionIds: ['consul:default:service:w1'] });
    expect(health()).toBe('healthy');
    expect((await put('/v1/agent/check/fail/service:w1')).statusCode).toBe(200);
    expect(health()).toBe('down');

    // Re-registering the same check keeps its status (Consul's addServiceInternal), whatever the new Status says.
    expect(
      (
        await put('/v1/agent/service/register', {
          Name: 'web',
          ID: 'w1',
          Address: '10.0.0.1',
          Port: 80,
          Check: { TTL: '10s', Status: 'warning' },
        })
      ).statusCode,
    ).toBe(200);
    expect(health()).toBe('down');
    // A service without a TTL check keeps the health Rollcall gives it.
    expect(
      (await put('/v1/agent/service/register', { Name: 'web', ID: 'w2', Address: '10.0.0.2', Port: 80 })).statusCode,
    ).toBe(200);
    expect(node.registry.getInstance('default', 'web', 'w2')!.health).toBe('healthy');
  });

  it('re-registering a service with the same TTL check keeps a passing check passing', async () => {
    start();
    const def = { Name: 'web', ID: 'w1', Address: '10.0.0.1', Port: 80, Check: { TTL: '10s' } };
    const health = () => node.registry.getInstance('default', 'web', 'w1')!.health;
    expect((await put('/v1/agent/service/register', def)).statusCode).toBe(200);
    expect((await put('/v1/agent/check/pass/service:w1?note=fine')).statusCode).toBe(200);
    expect((await put('/v1/agent/service/register', def)).statusCode).toBe(200);
    expect(ids(await get('/v1/health/service/web?passing=1'))).toEqual(['w1']);
    expect((await get('/v1/health/checks/web')).json()).toEqual([
      expect.objectContaining({ CheckID: 'service:w1', Status: 'passing', Output: 'fine' }),
    ]);
    expect(health()).toBe('healthy');
    // Also across a TTL change, which re-creates the instance on a new session.
    expect((await put('/v1/agent/service/register', { ...def, Check: { TTL: '20s' } })).statusCode).toBe(200);
    expect(ids(await get('/v1/health/service/web?passing=1'))).toEqual(['w1']);
    expect(health()).toBe('healthy');
    // Another check id is a new check: critical until its first pass.
    expect(
      (await put('/v1/agent/service/register', { ...def, Check: { CheckID: 'other', TTL: '10s' } })).statusCode,
    ).toBe(200);
    expect(health()).toBe('down');
  });

  it('a check replaced, dropped or refused leaves no session answering pass: 404 Unknown check ID', async () => {
    start();
    const base = { Name: 'web', ID: 'w1', Address: '10.0.0.1', Port: 80 };
    const unknown = async (checkId: string) => {
      const r = await put(`/v1/agent/check/pass/${checkId}`);
      expect([r.statusCode, r.body]).toEqual([404, `Unknown check ID ${JSON.stringify(checkId)}`]);
    };
    expect(
      (await put('/v1/agent/service/register', { ...base, Check: { CheckID: 'c1', TTL: '10s' } })).statusCode,
    ).toBe(200);
    expect((await put('/v1/agent/check/pass/c1')).statusCode).toBe(200);
    // Another CheckID: the old check's session goes.
    expect(
      (await put('/v1/agent/service/register', { ...base, Check: { CheckID: 'c2', TTL: '10s' } })).statusCode,
    ).toBe(200);
    expect(node.registry.getSession('consul:default:c1')).toBeUndefined();
    await unknown('c1');
    expect((await put('/v1/agent/check/pass/c2')).statusCode).toBe(200);
    // No check at all: the same.
    expect((await put('/v1/agent/service/register', base)).statusCode).toBe(200);
    expect(node.registry.getSession('consul:default:c2')).toBeUndefined();
    await unknown('c2');
    expect(node.registry.getInstance('default', 'web', 'w1')?.sessionId).toBeNull();
    // A registration refused (its record too long, too many Meta keys) opens no session.
    const notes = await put('/v1/agent/service/register', {
      ...base,
      ID: 'w2',
      Check: { TTL: '10s', Notes: 'n'.repeat(5000) },
    });
    expect(notes.statusCode).toBe(400);
    const meta = Object.fromEntries(Array.from({ length: 65 }, (_, k) => [`k${k}`, 'v']));
    expect(
      (await put('/v1/agent/service/register', { ...base, ID: 'w2', Meta: meta, Check: { TTL: '10s' } })).statusCode,
    ).toBe(400);
    expect(node.registry.getSession('consul:default:service:w2')).toBeUndefined();
    await unknown('service:w2');
    // A session no instance holds the check on (an orphan left by an older build) is no check either.
    node.apply({ type: 'openSession', sessionId: 'consul:default:ghost', ttlMs: 10_000, now: Date.now() });
    await unknown('ghost');
  });

  it("finds a service by ID from the feed's index, not a walk of every service: register, move, deregister", async () => {
    start();
    const walks = vi.spyOn(node.registry, 'listServices');
    const service = async (id: string) => {
      const r = await get(`/v1/agent/service/${id}`);
      return r.statusCode === 200 ? (r.json() as { Service: string }).Service : r.statusCode;
    };
    expect(
      (await put('/v1/agent/service/register', { Name: 'web', ID: 'x1', Address: '10.0.0.1', Port: 80 })).statusCode,
    ).toBe(200);
    expect(
      (
        await put('/v1/agent/service/register', {
          Name: 'web',
          ID: 'x1',
          Address: '10.0.0.1',
          Port: 81,
          Check: { TTL: '10s' },
        })
      ).statusCode,
    ).toBe(200);
    expect(await service('x1')).toBe('web');
    // Moved to another service: deregistered, then registered there.
    expect((await put('/v1/agent/service/deregister/x1')).statusCode).toBe(200);
    expect(await service('x1')).toBe(404);
    expect(
      (await put('/v1/agent/service/register', { Name: 'api', ID: 'x1', Address: '10.0.0.1', Port: 80 })).statusCode,
    ).toBe(200);
    expect(await service('x1')).toBe('api');
    // The same id in two services (natively): ambiguous.
    node.apply({ type: 'register', namespace: 'default', service: 'web', id: 'x1', address: '10.0.0.2', port: 80 });
    expect(await service('x1')).toBe(400);
    node.apply({ type: 'unregister', namespace: 'default', service: 'api', id: 'x1' });
    expect(await service('x1')).toBe('web');
    expect((await put('/v1/agent/service/deregister/x1')).statusCode).toBe(200);
    expect(await service('x1')).toBe(404);
    expect(walks).not.toHaveBeenCalled();
  });

  it("bad percent-encoding in the path is a plain-text 400, as every Consul error, not fastify's JSON", async () => {
    start();
    for (const url of ['/v1/health/service/%ZZ', '/v1/agent/service/%E0%A4%A']) {
      const r = await get(url);
      expect(r.statusCode).toBe(400);
      expect(r.headers['content-type']).toMatch(/^text\/plain/);
      expect(r.body).toBe('Invalid URL path: bad percent-encoding');
    }
  });

  it('Meta and Check.Notes limits are refused up front naming the Consul field, not Meta.rollcall.consul', async () => {
    start();
    const base = { Name: 'web', ID: 'm1', Address: '10.0.0.1', Port: 80 };
    const meta = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, k) => [`k${k}`, 'v']));
    const notes = await put('/v1/agent/service/register', { ...base, Check: { TTL: '10s', Notes: 'n'.repeat(1025) } });
    expect([notes.statusCode, notes.body]).toEqual([400, 'Check.Notes: at most 1024 characters (1025 given)']);
    const tooMany = await put('/v1/agent/service/register', { ...base, Meta: meta(65), Check: { TTL: '10s' } });
    expect([tooMany.statusCode, tooMany.body]).toEqual([400, 'Meta: at most 64 keys; 65 given']);
    expect(node.registry.getSession('consul:default:service:m1')).toBeUndefined();
    expect((await put('/v1/agent/service/register', { ...base, Meta: meta(65) })).body).toBe(
      'Meta: at most 64 keys; 65 given',
    );
    // Consul's 64 user keys, with or without a check (the record's key is not counted from v4).
    expect((await put('/v1/agent/service/register', { ...base, Meta: meta(64) })).statusCode).toBe(200);
    expect(
      (
        await put('/v1/agent/service/register', {
          ...base,
          Meta: meta(64),
          Weights: { Passing: 2, Warning: 1 },
          Check: { TTL: '10s', Notes: 'n'.repeat(1024) },
        })
      ).statusCode,
    ).toBe(200);
    const registered = (await get('/v1/agent/service/m1')).json() as { Meta: Record<string, string> };
    expect(Object.keys(registered.Meta)).toHaveLength(64);
    expect((await put('/v1/agent/check/fail/service:m1?note=down')).statusCode).toBe(200);
    expect(((await get('/v1/health/checks/web')).json() as { Status: string }[])[0]!.Status).toBe('critical');
  });

  it('what docs/consul.md says differs: an ID starting with _ is refused, tags de-duplicated and sorted, names case-sensitive', async () => {
    start();
    const underscore = await put('/v1/agent/service/register', {
      Name: 'web',
      ID: '_w1',
      Address: '10.0.0.1',
      Port: 80,
    });
    expect(underscore.statusCode).toBe(400);
    expect(underscore.body).toMatch(/^ID must be/);
    expect(
      (
        await put('/v1/agent/service/register', {
          Name: 'web',
          ID: 'w1',
          Address: '10.0.0.1',
          Port: 80,
          Tags: ['b', 'a', 'b'],
        })
      ).statusCode,
    ).toBe(200);
    expect(((await get('/v1/catalog/service/web')).json() as { ServiceTags: string[] }[])[0]!.ServiceTags).toEqual([
      'a',
      'b',
    ]);
    expect((await get('/v1/health/service/Web')).json()).toEqual([]);
  });

  it('a blocking query wakes on its own service only; X-Consul-Index never goes backwards', async () => {
    start();
    await put('/v1/agent/service/register', { Name: 'a', Address: '10.0.0.1', Port: 1 });
    const first = await get('/v1/health/service/a');
    const index = Number(first.headers['x-consul-index']);
    let answered = false;
    const parked = get(`/v1/health/service/a?index=${index}&wait=5s`).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(consul.feed.size).toBe(1);
    const stats = async () =>
      ((await get('/v1/agent/self')).json() as { Stats: { rollcall: Record<string, string> } }).Stats.rollcall;
    expect((await stats())['blocking_queries']).toBe('1');
    const wakeups = consul.feed.wakeups;
    await put('/v1/agent/service/register', { Name: 'b', Address: '10.0.0.2', Port: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(false);
    // Not woken at all: a query woken and parked again (its index unmoved) would not answer either.
    expect(consul.feed.wakeups).toBe(wakeups);
    await put('/v1/agent/service/register', { Name: 'a', ID: 'a2', Address: '10.0.0.3', Port: 1 });
    const r = await parked;
    expect(consul.feed.wakeups).toBe(wakeups + 1);
    expect((await stats())['wakeups']).toBe(String(wakeups + 1));
    expect(Number(r.headers['x-consul-index'])).toBeGreaterThan(index);
    expect(consul.feed.size).toBe(0);
    // Deleting the service: its index is the registry's emptied revision, still not lower.
    const before = Number(r.headers['x-consul-index']);
    await put('/v1/agent/service/deregister/a');
    await put('/v1/agent/service/deregister/a2');
    expect(Number((await get('/v1/health/service/a')).headers['x-consul-index'])).toBeGreaterThan(before);
    // Closing wakes what is parked.
    const parked2 = get(
      `/v1/catalog/services?index=${(await get('/v1/catalog/services')).headers['x-consul-index']}&wait=5s`,
    );
    await new Promise((res) => setTimeout(res, 50));
    const t0 = Date.now();
    consul.feed.close();
    expect((await parked2).statusCode).toBe(200);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('queries one change wakes share one encoded answer per service, revision and filters; never a stale one', async () => {
    start();
    await put('/v1/agent/service/register', { Name: 'a', ID: 'a1', Address: '10.0.0.1', Port: 1, Tags: ['x'] });
    const index = Number((await get('/v1/health/service/a')).headers['x-consul-index']);
    const hits = consul.feed.answers.hits;
    const urls = [
      ...Array.from({ length: 5 }, () => `/v1/health/service/a?index=${index}&wait=5s`),
      ...Array.from({ length: 3 }, () => `/v1/health/service/a?passing&tag=x&index=${index}&wait=5s`),
      `/v1/catalog/service/a?index=${index}&wait=5s`,
    ];
    const parked = urls.map((u) => get(u));
    await vi.waitFor(() => expect(consul.feed.size).toBe(urls.length));
    await put('/v1/agent/service/register', { Name: 'a', ID: 'a2', Address: '10.0.0.2', Port: 1, Tags: ['x'] });
    const answers = await Promise.all(parked);
    // Written once per variant: 4 + 2 of the 9 answers were shared.
    expect(consul.feed.answers.hits - hits).toBe(6);
    const bodies = answers.map((r) => r.body);
    expect(new Set(bodies.slice(0, 5)).size).toBe(1);
    expect(new Set(bodies.slice(5, 8)).size).toBe(1);
    for (const r of answers.slice(0, 8)) expect(ids(r)).toEqual(['a1', 'a2']);
    expect((answers[8]!.json() as { ServiceID: string }[]).map((e) => e.ServiceID)).toEqual(['a1', 'a2']);
    // A health flip moves the service's index: the next answer is written afresh, not the one kept.
    node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'a', id: 'a2', health: 'down' });
    expect(ids(await get('/v1/health/service/a?passing&tag=x'))).toEqual(['a1']);
    const all = (await get('/v1/health/service/a')).json() as { Checks: { Status: string }[] }[];
    expect(all.map((e) => e.Checks[0]!.Status)).toEqual(['passing', 'critical']);
  });

  it('never shares an answer between tag filters that join alike (an empty tag, a tag with NUL)', async () => {
    start();
    await put('/v1/agent/service/register', { Name: 'a', ID: 'a1', Address: '10.0.0.1', Port: 1, Tags: ['x', 'y'] });
    // `?tag=` asks for instances with the empty tag (none), as Consul filters it; written first, it must not
    // become the answer to the query without a tag filter.
    expect(ids(await get('/v1/health/service/a?tag='))).toEqual([]);
    expect(ids(await get('/v1/health/service/a'))).toEqual(['a1']);
    expect((await get('/v1/catalog/service/a?tag=')).json()).toEqual([]);
    expect((await get('/v1/catalog/service/a')).json()).toEqual([expect.objectContaining({ ServiceID: 'a1' })]);
    // One tag holding a NUL is not the two tags either side of it.
    expect(ids(await get('/v1/health/service/a?tag=x%00y'))).toEqual([]);
    expect(ids(await get('/v1/health/service/a?tag=x&tag=y'))).toEqual(['a1']);
  });

  it('a service name that cannot exist (a NUL in it) has no instances, never those of a cluster of another service', async () => {
    start();
    node.apply({
      type: 'register',
      namespace: 'default',
      service: 'web',
      cluster: 'prod',
      id: 'w1',
      address: '10.0.0.1',
      port: 80,
    });
    expect(ids(await get('/v1/health/service/web'))).toEqual(['w1']);
    for (const url of [
      '/v1/health/service/web%00prod',
      '/v1/catalog/service/web%00prod',
      '/v1/health/checks/web%00prod',
    ]) {
      const r = await get(url);
      expect([r.statusCode, r.json()]).toEqual([200, []]);
      expect(Number(r.headers['x-consul-index'])).toBeGreaterThanOrEqual(1);
    }
  });

  it('?tag= matches tags in any case, as Consul does', async () => {
    start();
    await put('/v1/agent/service/register', { Name: 'a', ID: 'a1', Address: '10.0.0.1', Port: 1, Tags: ['Prod'] });
    await put('/v1/agent/service/register', { Name: 'a', ID: 'a2', Address: '10.0.0.2', Port: 1, Tags: ['canary'] });
    expect(ids(await get('/v1/health/service/a?tag=prod'))).toEqual(['a1']);
    expect(ids(await get('/v1/health/service/a?tag=PROD&passing'))).toEqual(['a1']);
    expect(ids(await get('/v1/health/service/a?tag=Canary'))).toEqual(['a2']);
    expect(
      ((await get('/v1/catalog/service/a?tag=pRoD')).json() as { ServiceID: string }[]).map((e) => e.ServiceID),
    ).toEqual(['a1']);
  });

  it('a member marked corrupt answers 500 in plain text, but for /v1/agent/self and /v1/status/* (issue 20)', async () => {
    // What RollcallNode.integrity shows: the mark a peer's corruption check left, null when none.
    const { integrity } = node;
    start(TokenAuthority.parse(JSON.stringify([{ token: WRITE, role: 'admin' }])));
    const auth = { 'x-consul-token': WRITE };
    const web = { Name: 'web', ID: 'w1', Port: 80, Address: '10.0.0.1', Check: { TTL: '30s' } };
    expect((await put('/v1/agent/service/register', web, auth)).statusCode).toBe(200);
    expect((await get('/v1/health/service/web', auth)).statusCode).toBe(200);

    integrity.selfCorruption = { by: 'n1', detail: 'hash differs at index 7', at: 0 };
    const refused = [
      ['GET', '/v1/agent/services'],
      ['GET', '/v1/agent/service/w1'],
      ['GET', '/v1/agent/checks'],
      ['GET', '/v1/catalog/services'],
      ['GET', '/v1/catalog/service/web'],
      ['GET', '/v1/catalog/nodes'],
      ['GET', '/v1/catalog/datacenters'],
      ['GET', '/v1/health/service/web?passing'],
      ['GET', '/v1/health/checks/web'],
      ['GET', '/v1/health/state/any'],
      ['GET', '/v1/health/service/web?index=1&wait=1s'],
      ['PUT', '/v1/agent/service/register'],
      ['PUT', '/v1/agent/service/deregister/w1'],
      ['PUT', '/v1/agent/check/update/service:w1'],
    ] as const;
    for (const [method, url] of refused) {
      const r =
        method === 'GET'
          ? await get(url, auth)
          : await put(url, url.endsWith('register') ? web : { Status: 'passing' }, auth);
      expect([r.statusCode, r.body], `${method} ${url}`).toEqual([
        500,
        "This member's data failed the corruption check; ask another member",
      ]);
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    }
    // Tokens are still checked first: a request without one learns nothing of the mark.
    expect((await get('/v1/catalog/services')).statusCode).toBe(403);
    // Nothing a refused write asked for happened.
    expect(node.registry.listInstances('default', 'web').instances.map((i) => i.id)).toEqual(['w1']);
    // Its description and the Raft status still answer, as the native /healthz and /v1/cluster do.
    for (const url of ['/v1/agent/self', '/v1/status/leader', '/v1/status/peers'])
      expect((await get(url, auth)).statusCode, url).toBe(200);

    integrity.selfCorruption = null;
    expect(ids(await get('/v1/health/service/web', auth))).toEqual(['w1']);
  });

  it('refuses conflicting consistency modes and bad indexes', async () => {
    start();
    expect((await get('/v1/health/service/a?stale&consistent')).statusCode).toBe(400);
    expect((await get('/v1/health/service/a?index=abc')).body).toBe('Invalid index');
    expect((await get('/v1/health/service/a?filter=Service.Port==1')).statusCode).toBe(400);
    expect((await get('/v1/health/state/bogus')).statusCode).toBe(400);
    expect((await get('/v1/catalog/datacenters')).json()).toEqual(['dc1']);
  });
});
