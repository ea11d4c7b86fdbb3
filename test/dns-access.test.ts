/**
 * What DNS answers under access control (src/dns/access.ts), message in, message out, over a
 * real Registry without sockets: no DNS token answers no service name; a scoped token answers
 * its namespaces and service prefixes (names folded to the registered ones first) and
 * NXDOMAIN elsewhere; a register token reads nothing; a revoked token makes every service
 * question SERVFAIL, existing or not; a --token-file token works alike; each change of what
 * DNS reads with is logged once, never with the secret.
 */
import { Writable } from 'node:stream';
import { decode, encode } from 'dns-packet';
import { beforeEach, describe, expect, it } from 'vitest';
import { type AnswerContext, DnsAccess, type DnsAccessOptions, respond, ServiceDirectory } from '../src/dns/index.js';
import { createLogger } from '../src/log/index.js';
import type { Command } from '../src/registry/index.js';
import { newTokenSecret } from '../src/server/acl.js';
import { TokenAuthority } from '../src/server/auth.js';
import { seeded } from './client-helpers.js';
import { dataOf, queryPacket } from './helpers/dns.js';
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
