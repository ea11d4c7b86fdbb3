/**
 * What DNS answers under access control (src/dns/access.ts), message in, message out, over a
 * real Registry without sockets: no DNS token answers no service name; a scoped token answers
 * its namespaces and service prefixes (names folded to the registered ones first) and
 * NXDOMAIN elsewhere; a register token reads nothing; a revoked token makes every service
 * question SERVFAIL, existing or not; a --token-file token works alike; each change of what
 * DNS reads with is logged once, never with the secret. Another datacenter's names (over real
 * UDP, a node:http server standing in for that datacenter's member) are held to the scope by
 * the names that datacenter registers, which a name asked in another case folds to; a name
 * no case of which is in scope is not asked of that datacenter at all.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { decode, encode } from 'dns-packet';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type AnswerContext,
  DnsAccess,
  type DnsAccessOptions,
  type DnsServer,
  respond,
  ServiceDirectory,
  startDnsServer,
} from '../src/dns/index.js';
import { createLogger, silentLogger } from '../src/log/index.js';
import type { Command } from '../src/registry/index.js';
import { newTokenSecret } from '../src/server/acl.js';
import { TokenAuthority } from '../src/server/auth.js';
import { seeded } from './client-helpers.js';
import { dataOf, queryPacket, queryUdp } from './helpers/dns.js';
import { waitFor } from './helpers/wait.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const FILE_TOKEN = 'dns-file-token-0123456789';

describe('DNS under access control', () => {
  let node: InMemoryNodeApi;
  let lines: Record<string, unknown>[];

  const apply = (command: Command): void => {
    const r = node.apply(command);
    if (!r.result.ok) throw new Error(JSON.stringify(r.result));
  };
  const reg = (namespace: string, service: string, id: string, address: string): void =>
    apply({ type: 'register', namespace, service, id, address, port: 80, tags: ['v1'] } as Command);
  const token = (
    name: string,
    role: 'read' | 'register' | 'admin',
    scopes: { namespaces?: string[]; servicePrefixes?: string[] } = {},
  ): { id: string; secret: string } => {
    const t = newTokenSecret();
    apply({ type: 'createToken', id: t.id, name, role, secretHash: t.secretHash, ...scopes } as Command);
    return { id: t.id, secret: t.secret };
  };

  /** A context as startDnsServer builds it, reading with `options`. */
  const contextWith = (options: DnsAccessOptions): AnswerContext => {
    const logger = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk, _enc, cb) {
          lines.push(JSON.parse(String(chunk)));
          cb();
        },
      }),
    });
    const access = new DnsAccess(options, options.acl ? node.registry : null, logger);
    return {
      directory: new ServiceDirectory(node.registry, undefined, access),
      registry: node.registry,
      domain: 'consul',
      datacenter: 'dc1',
      namespace: 'default',
      ttl: 0,
      random: seeded(3),
    };
  };
  const ask = (ctx: AnswerContext, name: string, type = 'A'): { rcode: string; data: string[] } => {
    const r = respond(encode(queryPacket(name, type)), 'udp', ctx);
    if (r.bytes === null) throw new Error('no reply');
    const p = decode(r.bytes) as ReturnType<typeof decode> & { rcode: string };
    return { rcode: p.rcode, data: dataOf<string>(p.answers, 'A').sort() };
  };

  beforeEach(async () => {
    node = await InMemoryNodeApi.create();
    lines = [];
    reg('prod', 'orders', 'o1', '10.1.0.1');
    reg('prod', 'payments', 'p1', '10.1.0.2');
    reg('dev', 'orders', 'd1', '10.1.0.3');
    reg('default', 'web', 'w1', '10.1.0.4');
  });

  it('no DNS token: every service name is NXDOMAIN, as a name that does not exist', () => {
    const ctx = contextWith({ secret: null, file: null, acl: true });
    for (const name of ['web.service.consul', 'orders.service.prod.ns.consul', 'nothing.service.consul'])
      expect(ask(ctx, name)).toEqual({ rcode: 'NXDOMAIN', data: [] });
    // Names that read no registry state still answer.
    expect(ask(ctx, '0a010001.addr.dc1.consul')).toEqual({ rcode: 'NOERROR', data: ['10.1.0.1'] });
  });

  it('a scoped token: its names answer (in any case, with tags), the rest as if absent; logged once', () => {
    const t = token('dns', 'read', { namespaces: ['prod'], servicePrefixes: ['ord'] });
    const ctx = contextWith({ secret: t.secret, file: null, acl: true });
    expect(ask(ctx, 'orders.service.prod.ns.consul')).toEqual({ rcode: 'NOERROR', data: ['10.1.0.1'] });
    expect(ask(ctx, 'ORDERS.service.Prod.ns.consul').data).toEqual(['10.1.0.1']);
    expect(ask(ctx, 'v1.orders.service.prod.ns.consul').data).toEqual(['10.1.0.1']);
    expect(ask(ctx, 'orders.service.prod.ns.consul', 'SRV').rcode).toBe('NOERROR');
    expect(ask(ctx, 'payments.service.prod.ns.consul').rcode).toBe('NXDOMAIN');
    expect(ask(ctx, 'orders.service.dev.ns.consul').rcode).toBe('NXDOMAIN');
    expect(ask(ctx, 'web.service.consul').rcode).toBe('NXDOMAIN');
    const said = lines.filter((l) => l['msg'] === 'DNS answers what its token may read');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ principal: 'dns', tokenId: t.id, namespaces: ['prod'], servicePrefixes: ['ord'] });
    expect(JSON.stringify(lines)).not.toContain(t.secret);
  });

  it('revoked: every service question is SERVFAIL, existing or not, and the change is logged once', () => {
    const t = token('dns', 'read');
    const ctx = contextWith({ secret: t.secret, file: null, acl: true });
    expect(ask(ctx, 'web.service.consul').data).toEqual(['10.1.0.4']);
    apply({ type: 'revokeToken', id: t.id } as Command);
    for (const name of ['web.service.consul', 'nothing.service.consul', 'orders.service.prod.ns.consul'])
      expect(ask(ctx, name)).toEqual({ rcode: 'SERVFAIL', data: [] });
    expect(lines.filter((l) => String(l['msg']).startsWith('the DNS token is not valid'))).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain(t.secret);
  });

  it('a token not known here yet answers SERVFAIL, then answers once its create is applied', () => {
    const t = newTokenSecret();
    const ctx = contextWith({ secret: t.secret, file: null, acl: true });
    expect(ask(ctx, 'web.service.consul').rcode).toBe('SERVFAIL');
    apply({ type: 'createToken', id: t.id, name: 'late', role: 'read', secretHash: t.secretHash } as Command);
    expect(ask(ctx, 'web.service.consul').data).toEqual(['10.1.0.4']);
  });

  it('a register token may not read: NXDOMAIN, with a warning', () => {
    const t = token('ci', 'register');
    const ctx = contextWith({ secret: t.secret, file: null, acl: true });
    expect(ask(ctx, 'web.service.consul').rcode).toBe('NXDOMAIN');
    expect(lines.some((l) => l['level'] === 40 && String(l['msg']).includes('role register'))).toBe(true);
  });

  it('a --token-file token, with or without --acl', () => {
    const file = TokenAuthority.parse(JSON.stringify([{ token: FILE_TOKEN, role: 'read', namespaces: ['dev'] }]));
    for (const acl of [false, true]) {
      const ctx = contextWith({ secret: FILE_TOKEN, file, acl });
      expect(ask(ctx, 'orders.service.dev.ns.consul').data).toEqual(['10.1.0.3']);
      expect(ask(ctx, 'orders.service.prod.ns.consul').rcode).toBe('NXDOMAIN');
    }
    // Without --acl only the file is asked: a secret it does not hold reads nothing (SERVFAIL).
    const ctx = contextWith({ secret: 'not-in-the-file-0123456789', file, acl: false });
    expect(ask(ctx, 'orders.service.dev.ns.consul').rcode).toBe('SERVFAIL');
  });
});

describe("DNS under access control: another datacenter's names, in any case", () => {
  /** dc2's services as its member lists them: namespace, service, the one instance's address. */
  const DC2 = [
    ['prod', 'Orders', '10.2.0.1'],
    ['Prod', 'orders2', '10.2.0.2'],
    ['prod', 'ordinals', '10.2.0.3'],
    ['prod', 'payments', '10.2.0.4'],
  ] as const;
  let member: Server;
  let dns: DnsServer;
  let node: InMemoryNodeApi;
  let dnsTokenId: string;
  /** Requests dc2's member took; while `hold` is set, it answers once that resolves. */
  let requests: number;
  let hold: Promise<void> | null;

  const instance = (namespace: string, service: string, address: string) => ({
    id: `${service}-1`,
    namespace,
    service,
    cluster: 'default',
    address,
    port: 80,
    weight: 1,
    tags: [],
    metadata: {},
    health: 'healthy',
    enabled: true,
    ephemeral: false,
    createRevision: 1,
    modRevision: 1,
    version: 1,
  });
  /** What dc2's member answers: the native service list and instance listings, exact names only. */
  const answer = (req: IncomingMessage): { status: number; body: unknown } => {
    const url = new URL(req.url ?? '/', 'http://dc2');
    if (url.pathname === '/v1/services')
      return {
        status: 200,
        body: { revision: 9, services: DC2.map(([namespace, service]) => ({ namespace, service })) },
      };
    const m = /^\/v1\/namespaces\/([^/]+)\/services\/([^/]+)\/instances$/.exec(url.pathname);
    const found = m === null ? undefined : DC2.find(([ns, svc]) => ns === m[1] && svc === m[2]);
    if (found === undefined) return { status: 404, body: { error: { code: 'NOT_FOUND', message: 'no such service' } } };
    return { status: 200, body: { revision: 9, instances: [instance(found[0], found[1], found[2])] } };
  };
  const ask = async (name: string): Promise<{ rcode: string; data: string[] }> => {
    const p = (await queryUdp(dns.port, name, 'A')) as ReturnType<typeof decode> & { rcode: string };
    return { rcode: p.rcode, data: dataOf<string>(p.answers, 'A').sort() };
  };

  beforeEach(async () => {
    requests = 0;
    hold = null;
    member = createServer((req, res) => {
      requests++;
      const r = answer(req);
      const send = (): void => {
        res.writeHead(r.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(r.body));
      };
      if (hold === null) send();
      else void hold.then(send);
    });
    await new Promise<void>((resolve) => member.listen(0, '127.0.0.1', resolve));
    const address = `http://127.0.0.1:${(member.address() as AddressInfo).port}`;
    node = await InMemoryNodeApi.create();
    const t = newTokenSecret();
    dnsTokenId = t.id;
    const created = node.apply({
      type: 'createToken',
      id: t.id,
      name: 'dns',
      role: 'read',
      secretHash: t.secretHash,
      namespaces: ['prod'],
      servicePrefixes: ['ord'],
    } as Command);
    if (!created.result.ok) throw new Error(JSON.stringify(created.result));
    dns = await startDnsServer({
      node,
      logger: silentLogger(),
      listen: { host: '127.0.0.1', port: 0 },
      datacenter: 'dc1',
      federation: {
        route: (dc) => (dc === 'dc2' ? { members: [{ address }] } : null),
        datacentersByRtt: () => ['dc1', 'dc2'],
        hopHeader: (method, url) => `dc1.1.${method}:${url}`,
      },
      access: { secret: t.secret, file: null, acl: true },
    });
  });

  afterEach(async () => {
    await dns.close();
    member.closeAllConnections();
    await new Promise<void>((resolve) => member.close(() => resolve()));
  });

  it('a token limited to prod and ord* reads no case variant outside them (scope_checked_on_folded_remote_names)', async () => {
    // `orders` folds to dc2's `Orders`, which does not start with `ord`: hidden, as the native API would refuse it.
    expect(await ask('orders.service.prod.ns.dc2.dc.consul')).toEqual({ rcode: 'NXDOMAIN', data: [] });
    // `orders2` in `prod` folds to namespace `Prod`, which the token is not limited to.
    expect(await ask('orders2.service.prod.ns.dc2.dc.consul')).toEqual({ rcode: 'NXDOMAIN', data: [] });
    // In scope, asked in another case: answered, as a local name folds before its scope is checked.
    expect(await ask('ORDINALS.service.PROD.ns.dc2.dc.consul')).toEqual({ rcode: 'NOERROR', data: ['10.2.0.3'] });
    expect(await ask('ordinals.service.prod.ns.dc2.dc.consul')).toEqual({ rcode: 'NOERROR', data: ['10.2.0.3'] });
    // Out of scope in every case.
    expect(await ask('payments.service.prod.ns.dc2.dc.consul')).toEqual({ rcode: 'NXDOMAIN', data: [] });
    expect(await ask('ORDERS.service.dev.ns.dc2.dc.consul')).toEqual({ rcode: 'NXDOMAIN', data: [] });
  });

  it('a name out of scope in every case is NXDOMAIN without asking dc2 (out_of_scope_remote_name_not_asked)', async () => {
    // No case of `payments` starts with `ord`, no case of `dev` is `prod`: decided by the question alone.
    for (const name of [
      'payments.service.prod.ns.dc2.dc.consul',
      'PAYMENTS.service.PROD.ns.dc2.dc.consul',
      'ordinals.service.dev.ns.dc2.dc.consul',
      'ORDERS.service.dev.ns.dc2.dc.consul',
      // An unknown datacenter: NXDOMAIN as ever.
      'payments.service.prod.ns.dc9.dc.consul',
    ])
      expect(await ask(name)).toEqual({ rcode: 'NXDOMAIN', data: [] });
    expect(requests).toBe(0);
    // Asked in a case that may fold into the scope there: dc2 is asked, and decides it by the name it matched.
    expect(await ask('ORDERS.service.PROD.ns.dc2.dc.consul')).toEqual({ rcode: 'NXDOMAIN', data: [] });
    expect(requests).toBeGreaterThan(0);
    // Nor does a dc2 that cannot be reached: a name out of scope is NXDOMAIN whatever dc2 would say.
    member.closeAllConnections();
    await new Promise<void>((resolve) => member.close(() => resolve()));
    expect(await ask('payments.service.prod.ns.dc2.dc.consul')).toEqual({ rcode: 'NXDOMAIN', data: [] });
  });

  it('the DNS token revoked while dc2 is asked: SERVFAIL, as every name once it is revoked (revoked_during_remote_lookup)', async () => {
    let release = (): void => {};
    hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const asked = ask('ordinals.service.prod.ns.dc2.dc.consul');
    await waitFor('dc2 to be asked', () => requests > 0);
    const revoked = node.apply({ type: 'revokeToken', id: dnsTokenId } as Command);
    if (!revoked.result.ok) throw new Error(JSON.stringify(revoked.result));
    release();
    expect(await asked).toEqual({ rcode: 'SERVFAIL', data: [] });
    expect(await ask('ordinals.service.prod.ns.dc2.dc.consul')).toEqual({ rcode: 'SERVFAIL', data: [] });
  });
});
