/**
 * RemoteDirectory (src/dns/remote.ts): another datacenter's services for DNS, asked of its
 * members over real HTTP (a node:http server on loopback standing in for them) with a
 * virtual clock for the cache. A flood of questions costs one request per name per TTL; a
 * failure is remembered briefly; members are tried in turn; the request is the signed,
 * serializable native listing; names match in any case, as local ones do, and a scoped DNS
 * token reads them as registered there; and the same usability rules as local answers apply.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DnsAccess } from '../src/dns/access.js';
import {
  type DatacenterRoutes,
  type RemoteAnswer,
  RemoteDirectory,
  scopedLookup,
  usableRemote,
} from '../src/dns/remote.js';
import { silentLogger } from '../src/log/index.js';
import type { AclToken } from '../src/registry/index.js';
import { newTokenSecret } from '../src/server/acl.js';

const instance = (id: string, over: Record<string, unknown> = {}) => ({
  id,
  namespace: 'default',
  service: 'web',
  cluster: 'default',
  address: `10.0.0.${id.length}`,
  port: 8080,
  weight: 100,
  tags: ['V1'],
  metadata: {},
  health: 'healthy',
  enabled: true,
  ephemeral: false,
  createRevision: 1,
  modRevision: 1,
  version: 1,
  ...over,
});

interface Member {
  readonly server: Server;
  readonly address: string;
  readonly requests: IncomingMessage[];
  /** What the member answers: status and body. */
  reply: (req: IncomingMessage) => { status: number; body: unknown } | null;
}

async function member(): Promise<Member> {
  const requests: IncomingMessage[] = [];
  const m: Member = {
    requests,
    reply: () => ({ status: 200, body: { revision: 7, instances: [instance('a1')] } }),
    server: createServer((req, res) => {
      requests.push(req);
      const r = m.reply(req);
      if (r === null) return; // never answers
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.body));
    }),
    address: '',
  };
  await new Promise<void>((resolve) => m.server.listen(0, '127.0.0.1', resolve));
  (m as { address: string }).address = `http://127.0.0.1:${(m.server.address() as AddressInfo).port}`;
  return m;
}

describe('RemoteDirectory', () => {
  let members: Member[];
  let now: number;
  let directory: RemoteDirectory;
  let known: Record<string, string[]>;
  const routes: DatacenterRoutes = {
    route: (dc) => (dc in known ? { members: known[dc]!.map((address) => ({ address })) } : null),
    datacentersByRtt: () => ['dc-a', ...Object.keys(known)],
    hopHeader: (method, url) => `dc-a.1.${method}:${url}`,
  };
  const open = (timeoutMs = 1_000) =>
    new RemoteDirectory({
      routes,
      logger: silentLogger(),
      now: () => now,
      timeoutMs,
      cacheTtlMs: 5_000,
      failureTtlMs: 1_000,
    });
  const endpoints = (a: RemoteAnswer) => (a.kind === 'endpoints' ? a.endpoints.map((e) => e.endpoint.address) : a.kind);

  beforeEach(async () => {
    members = [await member(), await member()];
    known = { 'dc-b': members.map((m) => m.address) };
    now = 1_000;
    directory = open();
  });

  afterEach(async () => {
    directory.close();
    await Promise.all(
      members.map(
        (m) =>
          new Promise<void>((resolve) => {
            m.server.closeAllConnections();
            m.server.close(() => resolve());
          }),
      ),
    );
  });

  it('a flood of questions for one name is one request; answered from the cache until the TTL ends', async () => {
    const first = directory.lookup('dc-b', 'default', 'web');
    expect(first).toBeInstanceOf(Promise);
    const flood = Array.from({ length: 50 }, () => directory.lookup('dc-b', 'default', 'web'));
    const answers = await Promise.all([first, ...flood]);
    expect(new Set(answers.map(endpoints).map(String))).toEqual(new Set(['10.0.0.2']));
    expect(members[0]!.requests).toHaveLength(1);
    // Fresh: synchronous, no request.
    now += 4_999;
    const cached = directory.lookup('dc-b', 'default', 'web');
    expect(cached).not.toBeInstanceOf(Promise);
    expect(endpoints(cached as RemoteAnswer)).toEqual(['10.0.0.2']);
    expect(members[0]!.requests).toHaveLength(1);
    // Stale: asked again.
    now += 2;
    expect(endpoints(await directory.lookup('dc-b', 'default', 'web'))).toEqual(['10.0.0.2']);
    expect(members[0]!.requests).toHaveLength(2);
    // Another name is another request.
    await directory.lookup('dc-b', 'default', 'db');
    expect(members[0]!.requests).toHaveLength(3);
  });

  it('asks with the signed, serializable native listing in that datacenter', async () => {
    await directory.lookup('dc-b', 'prod', 'web');
    const req = members[0]!.requests[0]!;
    expect(req.method).toBe('GET');
    expect(req.url).toBe('/v1/namespaces/prod/services/web/instances?dc=dc-b&consistency=serializable&limit=2000');
    expect(req.headers['x-rollcall-federation-hop']).toBe(`dc-a.1.GET:${req.url}`);
  });

  it('an unknown datacenter answers at once, with no request; a label matches the name in any case', async () => {
    expect(directory.lookup('dc-x', 'default', 'web')).toEqual({ kind: 'unknown-datacenter' });
    const upper = await directory.lookup('DC-B', 'default', 'web');
    expect(upper).toMatchObject({ kind: 'endpoints', datacenter: 'dc-b' });
    expect(members[0]!.requests[0]!.url).toContain('dc=dc-b');
  });

  it('every member unreachable to the failure detector: unreachable at once, with no request', () => {
    known['dc-b'] = [];
    expect(directory.lookup('dc-b', 'default', 'web')).toEqual({ kind: 'unreachable' });
    expect(members[0]!.requests).toHaveLength(0);
  });

  it('tries the members in turn: a refused connection or a 503 moves on to the next', async () => {
    const dead = await member();
    await new Promise<void>((resolve) => dead.server.close(() => resolve()));
    members[0]!.reply = () => ({ status: 503, body: { error: { code: 'OVERLOADED' } } });
    known['dc-b'] = [dead.address, members[0]!.address, members[1]!.address];
    expect(endpoints(await directory.lookup('dc-b', 'default', 'web'))).toEqual(['10.0.0.2']);
    expect(members[0]!.requests).toHaveLength(1);
    expect(members[1]!.requests).toHaveLength(1);
  });

  it('no member answers within the deadline: unreachable, remembered for the failure TTL', async () => {
    directory.close();
    directory = open(300);
    for (const m of members) m.reply = () => null;
    const started = performance.now();
    expect(await directory.lookup('dc-b', 'default', 'web')).toEqual({ kind: 'unreachable' });
    expect(performance.now() - started).toBeLessThan(1_000);
    const asked = members[0]!.requests.length + members[1]!.requests.length;
    expect(directory.lookup('dc-b', 'default', 'web')).toEqual({ kind: 'unreachable' });
    expect(members[0]!.requests.length + members[1]!.requests.length).toBe(asked);
    now += 1_001;
    for (const m of members) m.reply = () => ({ status: 200, body: { revision: 1, instances: [instance('b22')] } });
    expect(endpoints(await directory.lookup('dc-b', 'default', 'web'))).toEqual(['10.0.0.3']);
  });

  it('a listing that needs a token there is unreachable without trying every member', async () => {
    members[0]!.reply = () => ({ status: 401, body: { error: { code: 'UNAUTHENTICATED' } } });
    expect(await directory.lookup('dc-b', 'default', 'web')).toEqual({ kind: 'unreachable' });
    expect(members[1]!.requests).toHaveLength(0);
  });

  it('a name that cannot exist there (400) or has no instance is an empty answer, cached like any', async () => {
    members[0]!.reply = () => ({ status: 400, body: { error: { code: 'INVALID_ARGUMENT' } } });
    expect(await directory.lookup('dc-b', 'default', 'we$b')).toMatchObject({ kind: 'endpoints', endpoints: [] });
    expect(directory.lookup('dc-b', 'default', 'we$b')).toMatchObject({ kind: 'endpoints', endpoints: [] });
  });

  it('matches the service and namespace in any case, as a local name does: as written first, then folded', async () => {
    const services = [
      { namespace: 'default', service: 'Orders' },
      { namespace: 'default', service: 'web' },
      { namespace: 'default', service: 'wEb' },
      { namespace: 'Prod', service: 'db' },
    ];
    const instances: Record<string, unknown[]> = {
      'default/Orders': [instance('o', { service: 'Orders' })],
      'default/web': [instance('ww')],
      'default/wEb': [instance('www', { service: 'wEb' })],
      'Prod/db': [instance('dddd', { namespace: 'Prod', service: 'db' })],
    };
    const asked: string[] = [];
    members[0]!.reply = (req) => {
      const url = new URL(req.url!, 'http://member');
      asked.push(url.pathname);
      if (url.pathname === '/v1/services') return { status: 200, body: { revision: 7, services } };
      const m = /^\/v1\/namespaces\/([^/]+)\/services\/([^/]+)\/instances$/.exec(url.pathname)!;
      const found = instances[`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`];
      return found === undefined
        ? { status: 404, body: { error: { code: 'NOT_FOUND' } } }
        : { status: 200, body: { revision: 7, instances: found } };
    };
    // As written when the name has instances there; folded when it has none.
    expect(endpoints(await directory.lookup('dc-b', 'default', 'wEb'))).toEqual(['10.0.0.3']);
    expect(endpoints(await directory.lookup('dc-b', 'default', 'ORDERS'))).toEqual(['10.0.0.1']);
    expect(endpoints(await directory.lookup('dc-b', 'prod', 'DB'))).toEqual(['10.0.0.4']);
    // Two services fold alike: the first by namespace, then name (code units: 'wEb' < 'web'), as lookup.ts picks.
    expect(endpoints(await directory.lookup('dc-b', 'default', 'WEB'))).toEqual(['10.0.0.3']);
    // No service folds to it: no instance (NXDOMAIN), as locally.
    expect(await directory.lookup('dc-b', 'default', 'nothing')).toMatchObject({ kind: 'endpoints', endpoints: [] });
    // The service names were read once for all of these (cached per datacenter like an answer).
    expect(asked.filter((p) => p === '/v1/services')).toHaveLength(1);
    expect(members[1]!.requests).toHaveLength(0);
  });

  it("a scoped DNS token reads another datacenter's names as registered there, not as asked (folded case)", async () => {
    // A replicated token that reads services starting with `pay` (prefixes match case-sensitively).
    const t = newTokenSecret();
    const token: AclToken = {
      id: t.id,
      name: 'dns',
      role: 'read',
      namespaces: null,
      servicePrefixes: ['pay'],
      secretHash: t.secretHash,
      createRevision: 1,
    };
    const tokens = { tokenByHash: (hash: string) => (hash === t.secretHash ? token : undefined) };
    const access = new DnsAccess({ secret: t.secret, file: null, acl: true }, tokens, silentLogger());
    const scoped = scopedLookup(directory, access);
    const registered: Record<string, unknown[]> = {
      'default/PAYROLL': [instance('secret', { service: 'PAYROLL' })],
      'default/payments': [instance('pp', { service: 'payments' })],
    };
    members[0]!.reply = (req) => {
      const url = new URL(req.url!, 'http://member');
      if (url.pathname === '/v1/services')
        return {
          status: 200,
          body: {
            revision: 7,
            services: Object.keys(registered).map((k) => ({ namespace: 'default', service: k.split('/')[1] })),
          },
        };
      const m = /^\/v1\/namespaces\/([^/]+)\/services\/([^/]+)\/instances$/.exec(url.pathname)!;
      const found = registered[`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`];
      return found === undefined
        ? { status: 404, body: { error: { code: 'NOT_FOUND' } } }
        : { status: 200, body: { revision: 7, instances: found } };
    };
    // `payroll` is in the token's scope as asked, but dc-b has it only as `PAYROLL`, which is not.
    expect(await scoped.lookup('dc-b', 'default', 'payroll')).toMatchObject({ kind: 'endpoints', endpoints: [] });
    // `PAYMENTS` is not, as asked, but dc-b registered it as `payments`, which is (as a local name reads).
    expect(endpoints(await scoped.lookup('dc-b', 'default', 'PAYMENTS'))).toEqual(['10.0.0.2']);
    // Without a DNS token nothing reads: no instance, and nothing is asked of dc-b.
    const asked = members[0]!.requests.length;
    const none = scopedLookup(
      directory,
      new DnsAccess({ secret: null, file: null, acl: true }, tokens, silentLogger()),
    );
    expect(none.lookup('dc-b', 'default', 'payments')).toMatchObject({ kind: 'endpoints', endpoints: [] });
    expect(members[0]!.requests).toHaveLength(asked);
  });

  it('a 400 other than a bad name (a member with federation off) is no answer: the next member is asked', async () => {
    members[0]!.reply = () => ({
      status: 400,
      body: { error: { code: 'UNKNOWN_DATACENTER', message: 'federation is off' } },
    });
    expect(endpoints(await directory.lookup('dc-b', 'default', 'web'))).toEqual(['10.0.0.2']);
    expect(members[1]!.requests).toHaveLength(1);
  });

  it('a flood of distinct names is shed beyond maxInflight lookups at once: SERVFAIL, not more requests', async () => {
    directory.close();
    directory = new RemoteDirectory({
      routes,
      logger: silentLogger(),
      now: () => now,
      maxInflight: 2,
      timeoutMs: 300,
    });
    for (const m of members) m.reply = () => null;
    const s1 = directory.lookup('dc-b', 'default', 's1');
    const s2 = directory.lookup('dc-b', 'default', 's2');
    expect(directory.lookup('dc-b', 'default', 's3')).toEqual({ kind: 'unreachable' });
    await Promise.all([s1, s2]);
    // Not remembered: once the others are done, the shed name is asked.
    expect(directory.lookup('dc-b', 'default', 's3')).toBeInstanceOf(Promise);
  });

  it('keeps at most maxEntries names, the least recently used going first', async () => {
    directory.close();
    directory = new RemoteDirectory({ routes, logger: silentLogger(), now: () => now, maxEntries: 2 });
    await directory.lookup('dc-b', 'default', 's1');
    await directory.lookup('dc-b', 'default', 's2');
    directory.lookup('dc-b', 'default', 's1'); // a hit: s2 is now the oldest
    await directory.lookup('dc-b', 'default', 's3');
    expect(directory.lookup('dc-b', 'default', 's1')).not.toBeInstanceOf(Promise);
    expect(directory.lookup('dc-b', 'default', 's3')).not.toBeInstanceOf(Promise);
    const s2 = directory.lookup('dc-b', 'default', 's2');
    expect(s2).toBeInstanceOf(Promise);
    await s2;
  });
});

describe('usableRemote: the rules of local answers', () => {
  it('leaves out disabled, down and critical-check instances; a warning one weighs its Warning weight', () => {
    expect(usableRemote(instance('a', { enabled: false }))).toBeNull();
    expect(usableRemote(instance('a', { health: 'down' }))).toBeNull();
    expect(usableRemote(instance('a', { health: 'nonsense' }))).toBeNull();
    expect(usableRemote({ address: '10.0.0.1' })).toBeNull();
    const check = (status: string, extra: Record<string, unknown> = {}) =>
      instance('a', {
        metadata: { 'rollcall.consul': JSON.stringify({ check: { id: 'c', status }, ...extra }) },
      });
    const critical = usableRemote(check('critical'));
    const warning = usableRemote(check('warning', { warningWeight: 3 }));
    const suspect = usableRemote(instance('a', { health: 'suspect', tags: ['Blue', 'blue'] }));
    expect({ critical, warning: warning?.endpoint.weight, suspect }).toEqual({
      critical: null,
      warning: 3,
      suspect: { endpoint: { address: '10.0.0.1', port: 8080, weight: 100 }, tags: ['blue'] },
    });
  });
});
