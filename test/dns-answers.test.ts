/**
 * What the DNS interface answers, message in, message out (src/dns/message.ts), over a real
 * Registry (test/in-memory-node-api.ts) without sockets: records and sections as Consul fills
 * them, the health mapping the Consul API uses, truncation to the transport's size, and
 * bad messages that get an error code or nothing, never an exception (a seeded fuzz).
 */
import {
  type Answer,
  type DecodedPacket,
  decode,
  encode,
  encodingLength,
  type Packet,
  RECURSION_DESIRED,
  TRUNCATED_RESPONSE,
} from 'dns-packet';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type AnswerContext, respond, ServiceDirectory } from '../src/dns/index.js';
import { MAX_DNS_ENDPOINTS } from '../src/dns/lookup.js';
import type { Register } from '../src/registry/index.js';
import { seeded } from './client-helpers.js';
import { dataOf, queryPacket } from './helpers/dns.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

type Reply = DecodedPacket & { rcode: string };

describe('DNS answers', () => {
  let node: InMemoryNodeApi;
  let ctx: AnswerContext;

  const reg = (id: string, over: Partial<Register> = {}) => {
    const r = node.apply({
      type: 'register',
      namespace: 'default',
      service: 'web',
      id,
      address: '10.0.0.1',
      port: 8080,
      ...over,
    });
    if (!r.result.ok) throw new Error(JSON.stringify(r.result));
  };
  const ask = (
    name: string,
    type: string,
    options: { transport?: 'udp' | 'tcp'; edns?: number } = {},
  ): Reply & { size: number } => {
    const r = respond(
      encode(queryPacket(name, type, options.edns === undefined ? {} : { edns: options.edns })),
      options.transport ?? 'udp',
      ctx,
    );
    if (r.bytes === null) throw new Error('no reply');
    return Object.assign(decode(r.bytes) as Reply, { size: r.bytes.length });
  };
  const truncated = (p: DecodedPacket) => ((p.flags ?? 0) & TRUNCATED_RESPONSE) !== 0;

  /** The endpoints a question would be answered from (the cache of that service complete or not). */
  const endpointsOf = (service: string, random: () => number, limit?: number) => {
    const got = ctx.directory.endpoints('default', service, null, random, limit);
    if (got === 'pending') throw new Error(`${service}: nothing read yet`);
    return got;
  };
  /** Lets every cache still being built finish (a slice per turn of the event loop). */
  const settled = async () => {
    while (ctx.directory.pendingBuilds > 0) await new Promise((resolve) => setImmediate(resolve));
  };

  beforeEach(async () => {
    node = await InMemoryNodeApi.create();
    ctx = {
      directory: new ServiceDirectory(node.registry),
      registry: node.registry,
      domain: 'consul',
      datacenter: 'dc1',
      namespace: 'default',
      ttl: 0,
      random: seeded(7),
    };
  });
  afterEach(() => ctx.directory.close());

  it('A: one record per IPv4 instance, named as asked, authoritative, question echoed', () => {
    reg('w1', { address: '10.0.0.1' });
    reg('w2', { address: '10.0.0.2' });
    reg('w3', { address: 'fd00::3' });
    const p = ask('web.service.consul', 'A');
    expect(p.rcode).toBe('NOERROR');
    expect(p.flag_aa).toBe(true);
    expect(p.flag_qr).toBe(true);
    expect(p.flag_rd).toBe(true);
    expect(p.flag_ra).toBe(false);
    expect(p.id).toBe(4242);
    expect(p.questions).toEqual([{ name: 'web.service.consul', type: 'A', class: 'IN' }]);
    expect(dataOf(p.answers, 'A').sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(p.answers!.every((a) => a.name === 'web.service.consul')).toBe(true);
    expect(dataOf(ask('web.service.consul', 'AAAA').answers, 'AAAA')).toEqual(['fd00::3']);
    expect(ask('web.service.consul', 'ANY').answers).toHaveLength(3);
  });

  it('SRV: priority 1, the weight, the port, an addr target, and its A/AAAA in the additional section', () => {
    reg('w1', { address: '10.0.0.1', port: 8080, weight: 5 });
    reg('w2', { address: 'fd00::3', port: 9090 });
    const p = ask('web.service.consul', 'SRV');
    const srv = dataOf<{ priority: number; weight: number; port: number; target: string }>(p.answers, 'SRV');
    expect(srv.sort((a, b) => a.port - b.port)).toEqual([
      { priority: 1, weight: 5, port: 8080, target: '0a000001.addr.dc1.consul' },
      { priority: 1, weight: 100, port: 9090, target: 'fd000000000000000000000000000003.addr.dc1.consul' },
    ]);
    const extra = (p.additionals ?? []).map((r) => [r.type, r.name, (r as { data: string }).data]).sort();
    expect(extra).toEqual([
      ['A', '0a000001.addr.dc1.consul', '10.0.0.1'],
      ['AAAA', 'fd000000000000000000000000000003.addr.dc1.consul', 'fd00::3'],
    ]);
    // The target resolves too, for a client that ignores the additional section.
    expect(dataOf(ask('0a000001.addr.dc1.consul', 'A').answers, 'A')).toEqual(['10.0.0.1']);
    expect(ask('0a000001.addr.dc1.consul', 'AAAA')).toMatchObject({ rcode: 'NOERROR', answers: [] });
  });

  it('a tag filters, in any case; the RFC 2782 form reads `_tcp` as no tag', () => {
    reg('w1', { address: '10.0.0.1', tags: ['v1', 'blue'] });
    reg('w2', { address: '10.0.0.2', tags: ['v2'] });
    expect(dataOf(ask('v1.web.service.consul', 'A').answers, 'A')).toEqual(['10.0.0.1']);
    expect(dataOf(ask('V2.web.service.consul', 'A').answers, 'A')).toEqual(['10.0.0.2']);
    expect(ask('v3.web.service.consul', 'A').rcode).toBe('NXDOMAIN');
    expect(dataOf(ask('_web._tcp.service.consul', 'SRV').answers, 'SRV')).toHaveLength(2);
    expect(
      dataOf<{ target: string }>(ask('_web._blue.service.consul', 'SRV').answers, 'SRV').map((s) => s.target),
    ).toEqual(['0a000001.addr.dc1.consul']);
  });

  it('an unknown name, and a service with no usable instance: NXDOMAIN with the SOA in the authority section', () => {
    reg('w1', { address: '10.0.0.1' });
    for (const name of ['nope.service.consul', 'web.node.consul', 'x.y.consul']) {
      const p = ask(name, 'A');
      expect(p.rcode).toBe('NXDOMAIN');
      expect(p.flag_aa).toBe(true);
      expect(p.answers).toEqual([]);
      expect(p.authorities).toHaveLength(1);
      expect(p.authorities![0]).toMatchObject({
        type: 'SOA',
        name: 'consul',
        data: { mname: 'ns.consul', rname: 'hostmaster.consul', refresh: 3600, retry: 600, expire: 86400, minimum: 0 },
      });
      expect((p.authorities![0] as { data: { serial: number } }).data.serial).toBe(node.registry.revision);
    }
  });

  it('a name that exists without records of the asked type: NOERROR with the SOA (NODATA)', () => {
    reg('w1', { address: '10.0.0.1' });
    const p = ask('web.service.consul', 'AAAA');
    expect(p.rcode).toBe('NOERROR');
    expect(p.answers).toEqual([]);
    expect(p.authorities![0]!.type).toBe('SOA');
    expect(ask('web.service.consul', 'MX')).toMatchObject({ rcode: 'NOERROR', answers: [] });
    expect(ask('web.service.consul', 'UNKNOWN_65')).toMatchObject({ rcode: 'NOERROR', answers: [] });
  });

  it('the apex answers its SOA', () => {
    const p = ask('consul', 'SOA');
    expect(p.rcode).toBe('NOERROR');
    expect(p.answers![0]).toMatchObject({ type: 'SOA', name: 'consul' });
  });

  it('health as the Consul API maps it: down left out, suspect counted as passing, disabled left out', () => {
    reg('up', { address: '10.0.0.1' });
    reg('down', { address: '10.0.0.2' });
    reg('off', { address: '10.0.0.3' });
    node.apply({ type: 'openSession', sessionId: 's1', ttlMs: 10_000, now: 0 });
    reg('held', { address: '10.0.0.4', sessionId: 's1' });
    node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'web', id: 'down', health: 'down' });
    node.apply({ type: 'markSuspect', term: 1, sessionIds: ['s1'], now: 1 });
    const off = node.registry.getInstance('default', 'web', 'off')!;
    node.apply({
      type: 'update',
      namespace: 'default',
      service: 'web',
      id: 'off',
      expectedVersion: off.version,
      patch: { enabled: false },
    });
    expect(node.registry.getInstance('default', 'web', 'held')!.health).toBe('suspect');
    expect(dataOf(ask('web.service.consul', 'A').answers, 'A').sort()).toEqual(['10.0.0.1', '10.0.0.4']);
    expect(dataOf(ask('web.service.consul', 'SRV').answers, 'SRV')).toHaveLength(2);
    // Every instance down: the name does not exist, as in Consul.
    node.apply({ type: 'register', namespace: 'default', service: 'api', id: 'a1', address: '10.0.1.1', port: 80 });
    node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'api', id: 'a1', health: 'down' });
    expect(ask('api.service.consul', 'A').rcode).toBe('NXDOMAIN');
  });

  it('subhealthy (Consul warning) stays, with the warning weight when Consul registered one', () => {
    reg('w1', {
      address: '10.0.0.1',
      weight: 10,
      metadata: { 'rollcall.consul': JSON.stringify({ check: null, warningWeight: 3 }) },
    });
    expect(dataOf<{ weight: number }>(ask('web.service.consul', 'SRV').answers, 'SRV')[0]!.weight).toBe(10);
    node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'web', id: 'w1', health: 'subhealthy' });
    expect(dataOf<{ weight: number }>(ask('web.service.consul', 'SRV').answers, 'SRV')[0]!.weight).toBe(3);
  });

  it('service and namespace names match in any case; `.ns` picks a namespace; --consul-namespace is the default', () => {
    reg('w1', { address: '10.0.0.1', service: 'Web' });
    node.apply({ type: 'register', namespace: 'prod', service: 'orders', id: 'o1', address: '10.0.1.1', port: 9000 });
    expect(dataOf(ask('WEB.service.consul', 'A').answers, 'A')).toEqual(['10.0.0.1']);
    expect(dataOf(ask('web.service.consul', 'A').answers, 'A')).toEqual(['10.0.0.1']);
    expect(ask('orders.service.consul', 'A').rcode).toBe('NXDOMAIN');
    expect(dataOf(ask('orders.service.prod.ns.consul', 'A').answers, 'A')).toEqual(['10.0.1.1']);
    expect(dataOf(ask('orders.service.PROD.ns.dc1.dc.consul', 'A').answers, 'A')).toEqual(['10.0.1.1']);
    ctx = { ...ctx, namespace: 'prod' };
    expect(dataOf(ask('orders.service.consul', 'A').answers, 'A')).toEqual(['10.0.1.1']);
  });

  it('NXDOMAIN under steady writes does not re-list the services; a service that appears or goes is seen (issue 22)', () => {
    for (let k = 0; k < 200; k++)
      node.apply({
        type: 'register',
        namespace: 'default',
        service: `svc${k}`,
        id: 'i1',
        address: '10.0.0.1',
        port: 80,
      });
    const listed = vi.spyOn(node.registry, 'listServices');
    for (let k = 0; k < 50; k++) {
      // A write that moves the revision but not the set of services, then a name that does not exist.
      reg(`w${k}`, { address: `10.0.2.${k}` });
      expect(ask(`nope${k}.service.consul`, 'A').rcode).toBe('NXDOMAIN');
    }
    expect(listed.mock.calls.length).toBeLessThanOrEqual(1);
    // The folded index follows the set of services: one that appears, one that goes.
    node.apply({ type: 'register', namespace: 'default', service: 'Billing', id: 'b1', address: '10.0.3.1', port: 80 });
    expect(dataOf(ask('billing.service.consul', 'A').answers, 'A')).toEqual(['10.0.3.1']);
    node.apply({ type: 'unregister', namespace: 'default', service: 'Billing', id: 'b1' });
    expect(ask('billing.service.consul', 'A').rcode).toBe('NXDOMAIN');
    // Of two names that fold alike, the first by name wins, as before.
    node.apply({ type: 'register', namespace: 'default', service: 'PAY', id: 'p1', address: '10.0.4.1', port: 80 });
    node.apply({ type: 'register', namespace: 'default', service: 'Pay', id: 'p2', address: '10.0.4.2', port: 80 });
    expect(dataOf(ask('pay.service.consul', 'A').answers, 'A')).toEqual(['10.0.4.1']);
    node.apply({ type: 'unregister', namespace: 'default', service: 'PAY', id: 'p1' });
    expect(dataOf(ask('pay.service.consul', 'A').answers, 'A')).toEqual(['10.0.4.2']);
    expect(listed.mock.calls.length).toBeLessThanOrEqual(1);
  });

  it('our datacenter answers in any case; another is NXDOMAIN until federation', () => {
    reg('w1', { address: '10.0.0.1' });
    expect(ask('web.service.dc1.dc.consul', 'A').rcode).toBe('NOERROR');
    expect(ask('web.service.DC1.consul', 'A').rcode).toBe('NOERROR');
    expect(ask('web.service.dc2.dc.consul', 'A')).toMatchObject({ rcode: 'NXDOMAIN', answers: [] });
  });

  it('a datacenter with a hyphen (eu-west): its names answer, and its SRV targets resolve', () => {
    ctx = { ...ctx, datacenter: 'eu-west' };
    reg('w1', { address: '10.0.0.1', port: 8080 });
    expect(dataOf(ask('web.service.eu-west.dc.consul', 'A').answers, 'A')).toEqual(['10.0.0.1']);
    expect(dataOf(ask('web.service.EU-WEST.consul', 'A').answers, 'A')).toEqual(['10.0.0.1']);
    expect(ask('web.service.eu-east.dc.consul', 'A').rcode).toBe('NXDOMAIN');
    const srv = dataOf<{ target: string }>(ask('web.service.eu-west.dc.consul', 'SRV').answers, 'SRV');
    expect(srv.map((r) => r.target)).toEqual(['0a000001.addr.eu-west.consul']);
    expect(dataOf(ask(srv[0]!.target, 'A').answers, 'A')).toEqual(['10.0.0.1']);
  });

  it('a name outside the domain is refused, not answered with authority', () => {
    const p = ask('example.org', 'A');
    expect(p.rcode).toBe('REFUSED');
    expect(p.flag_aa).toBe(false);
    ctx = { ...ctx, domain: 'rollcall.internal' };
    reg('w1', { address: '10.0.0.1' });
    expect(ask('web.service.consul', 'A').rcode).toBe('REFUSED');
    expect(dataOf(ask('web.service.rollcall.internal', 'A').answers, 'A')).toEqual(['10.0.0.1']);
  });

  it('the TTL is --dns-ttl on every answer record', () => {
    reg('w1', { address: '10.0.0.1' });
    ctx = { ...ctx, ttl: 30 };
    const p = ask('web.service.consul', 'SRV');
    expect([...p.answers!, ...p.additionals!].map((r) => (r as { ttl: number }).ttl)).toEqual([30, 30]);
  });

  it('an instance at a host name: a CNAME for A when no address answers, the name itself as SRV target', () => {
    reg('db', { service: 'db', address: 'db1.example.com', port: 5432 });
    expect(ask('db.service.consul', 'A').answers).toEqual([
      expect.objectContaining({ type: 'CNAME', name: 'db.service.consul', data: 'db1.example.com' }),
    ]);
    const p = ask('db.service.consul', 'SRV');
    expect(dataOf(p.answers, 'SRV')).toEqual([{ priority: 1, weight: 100, port: 5432, target: 'db1.example.com' }]);
    expect(p.additionals).toEqual([]);
  });

  it('answers are shuffled, and always the same set', () => {
    for (let k = 1; k <= 8; k++) reg(`w${k}`, { address: `10.0.0.${k}` });
    const orders = new Set<string>();
    for (let k = 0; k < 20; k++) {
      const got = dataOf<string>(ask('web.service.consul', 'A').answers, 'A');
      expect([...got].sort()).toEqual([
        '10.0.0.1',
        '10.0.0.2',
        '10.0.0.3',
        '10.0.0.4',
        '10.0.0.5',
        '10.0.0.6',
        '10.0.0.7',
        '10.0.0.8',
      ]);
      orders.add(got.join(','));
    }
    expect(orders.size).toBeGreaterThan(10);
  });

  describe('a service larger than any answer', () => {
    it('is sampled, never sorted whole: at most MAX_DNS_ENDPOINTS endpoints per question, all distinct', () => {
      for (let k = 0; k < MAX_DNS_ENDPOINTS.A + 1000; k++)
        reg(`w${k}`, { address: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}` });
      const sorted = vi.spyOn(node.registry, 'listInstances');
      const endpoints = endpointsOf('web', seeded(3));
      expect(endpoints).toHaveLength(MAX_DNS_ENDPOINTS.A);
      expect(new Set(endpoints.map((e) => e.address)).size).toBe(MAX_DNS_ENDPOINTS.A);
      const p = ask('web.service.consul', 'A', { transport: 'tcp' });
      expect(p.size).toBeLessThanOrEqual(65535);
      expect(p.answers!.length).toBeGreaterThan(1000);
      expect(sorted).not.toHaveBeenCalled();
    });

    it('a question does not walk the service: its usable endpoints are kept, patched from the change feed (issue 22)', async () => {
      const n = 3000;
      for (let k = 0; k < n; k++)
        reg(`w${k}`, {
          address: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
          tags: k % 2 === 0 ? ['Even'] : [],
        });
      // Counts the instances any reader walks through the registry's one by-service iterator.
      let visited = 0;
      const each = node.registry.eachInstance.bind(node.registry);
      vi.spyOn(node.registry, 'eachInstance').mockImplementation(function* (namespace: string, service: string) {
        for (const i of each(namespace, service)) {
          visited++;
          yield i;
        }
      });
      expect(ask('web.service.consul', 'A', { transport: 'tcp' }).answers!.length).toBeGreaterThan(1000);
      await settled();
      for (let q = 0; q < 20; q++) {
        expect(ask('web.service.consul', 'A', { transport: 'tcp' }).answers!.length).toBeGreaterThan(1000);
        expect(ask('web.service.consul', 'SRV', { transport: 'tcp' }).answers!.length).toBeGreaterThan(500);
        expect(ask('even.web.service.consul', 'A', { transport: 'tcp' }).answers).toHaveLength(n / 2);
      }
      // One walk to build the cache, however many questions.
      expect(visited).toBeLessThanOrEqual(n);
      const walked = visited;

      // Changes reach the answers without another walk: a new tagged instance, a deregistration, a health flip, a tag change.
      reg('canary', { address: '10.250.0.1', tags: ['Canary'] });
      expect(dataOf(ask('canary.web.service.consul', 'A').answers, 'A')).toEqual(['10.250.0.1']);
      node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'web', id: 'canary', health: 'down' });
      expect(ask('canary.web.service.consul', 'A').rcode).toBe('NXDOMAIN');
      node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'web', id: 'canary', health: 'healthy' });
      expect(dataOf(ask('canary.web.service.consul', 'A').answers, 'A')).toEqual(['10.250.0.1']);
      const canary = node.registry.getInstance('default', 'web', 'canary')!;
      node.apply({
        type: 'update',
        namespace: 'default',
        service: 'web',
        id: 'canary',
        expectedVersion: canary.version,
        patch: { tags: ['Even'] },
      });
      expect(ask('canary.web.service.consul', 'A').rcode).toBe('NXDOMAIN');
      expect(ask('even.web.service.consul', 'A', { transport: 'tcp' }).answers).toHaveLength(n / 2 + 1);
      node.apply({ type: 'unregister', namespace: 'default', service: 'web', id: 'canary' });
      expect(ask('even.web.service.consul', 'A', { transport: 'tcp' }).answers).toHaveLength(n / 2);
      expect(visited).toBe(walked);

      // A service that lost its last instance and came back is read afresh.
      node.apply({ type: 'register', namespace: 'default', service: 'api', id: 'a1', address: '10.0.9.1', port: 80 });
      expect(dataOf(ask('api.service.consul', 'A').answers, 'A')).toEqual(['10.0.9.1']);
      node.apply({ type: 'unregister', namespace: 'default', service: 'api', id: 'a1' });
      expect(ask('api.service.consul', 'A').rcode).toBe('NXDOMAIN');
      node.apply({ type: 'register', namespace: 'default', service: 'api', id: 'a2', address: '10.0.9.2', port: 80 });
      expect(dataOf(ask('api.service.consul', 'A').answers, 'A')).toEqual(['10.0.9.2']);

      // A snapshot install (a reset of the change feed) drops the caches: the next question reads the registry again.
      const beforeReset = visited;
      node.registry.history.reset(node.registry.revision);
      expect(ask('web.service.consul', 'A', { transport: 'tcp' }).answers!.length).toBeGreaterThan(1000);
      await settled();
      expect(visited).toBe(beforeReset + n);
    });

    it('a large service is read into its cache a slice per turn, exact although it changes meanwhile', async () => {
      const slice = 100;
      ctx = { ...ctx, directory: new ServiceDirectory(node.registry, slice) };
      const n = 1000;
      for (let k = 0; k < n; k++)
        reg(`w${k}`, { address: `10.0.${k >> 8}.${k & 255}`, tags: k === n - 1 ? ['last'] : [] });
      let visited = 0;
      const each = node.registry.eachInstance.bind(node.registry);
      vi.spyOn(node.registry, 'eachInstance').mockImplementation(function* (namespace: string, service: string) {
        for (const i of each(namespace, service)) {
          visited++;
          yield i;
        }
      });
      // The first question reads one slice and answers from it: a subset, never the whole service at once.
      const first = dataOf<string>(ask('web.service.consul', 'A', { transport: 'tcp' }).answers, 'A');
      expect(visited).toBe(slice);
      expect(first).toHaveLength(slice);
      // Nothing read yet carries the tag: not known, so SERVFAIL (the resolver retries), not NXDOMAIN.
      expect(ask('last.web.service.consul', 'A').rcode).toBe('SERVFAIL');
      expect(ctx.directory.pendingBuilds).toBe(1);
      // Changes while it is read: a new instance, an unread one removed, an unread one down, an unread one re-tagged.
      reg('late', { address: '10.9.9.9' });
      node.apply({ type: 'unregister', namespace: 'default', service: 'web', id: `w${n - 2}` });
      node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'web', id: `w${n - 3}`, health: 'down' });
      const w = node.registry.getInstance('default', 'web', `w${n - 4}`)!;
      node.apply({
        type: 'update',
        namespace: 'default',
        service: 'web',
        id: w.id,
        expectedVersion: w.version,
        patch: { tags: ['LAST'] },
      });
      // Each turn reads at most one slice.
      let before = visited;
      await new Promise((resolve) => setImmediate(resolve));
      expect(visited - before).toBeLessThanOrEqual(slice);
      expect(visited - before).toBeGreaterThan(0);
      before = visited;
      await settled();
      expect(ctx.directory.pendingBuilds).toBe(0);
      const usable = [...each('default', 'web')].filter((i) => i.health !== 'down').map((i) => i.address);
      // n, one removed, one new, one down.
      expect(usable).toHaveLength(n - 1);
      expect(dataOf<string>(ask('web.service.consul', 'A', { transport: 'tcp' }).answers, 'A').sort()).toEqual(
        usable.sort(),
      );
      expect(dataOf<string>(ask('last.web.service.consul', 'A').answers, 'A').sort()).toEqual(
        [`10.0.${(n - 4) >> 8}.${(n - 4) & 255}`, `10.0.${(n - 1) >> 8}.${(n - 1) & 255}`].sort(),
      );
      // Read once in all, give or take the instances that changed (a changed one may be read again).
      expect(visited).toBeLessThanOrEqual(n + 10);
    });

    it('samples uniformly: every instance turns up in some answer', () => {
      for (let k = 0; k < 100; k++) reg(`w${k}`, { address: `10.0.1.${k}` });
      const random = seeded(11);
      const met = new Set<string>();
      for (let n = 0; n < 100; n++) for (const e of endpointsOf('web', random, 10)) met.add(e.address);
      expect(met.size).toBe(100);
    });
  });

  describe('truncation', () => {
    const many = (n: number) => {
      for (let k = 1; k <= n; k++) reg(`w${k}`, { address: `10.0.${k >> 8}.${k & 255}`, port: 8000 + k });
    };
    const pairedUp = (p: DecodedPacket) => {
      const targets = new Set(dataOf<{ target: string }>(p.answers, 'SRV').map((s) => s.target));
      const resolved = (p.additionals ?? []).filter((r) => r.type === 'A').map((r) => r.name);
      expect(new Set(resolved)).toEqual(targets);
    };

    it('over UDP without EDNS: at most 512 bytes, TC set, each SRV kept with its A record', () => {
      many(40);
      const p = ask('web.service.consul', 'SRV');
      expect(p.size).toBeLessThanOrEqual(512);
      expect(truncated(p)).toBe(true);
      expect(p.answers!.length).toBeGreaterThan(0);
      expect(p.answers!.length).toBeLessThan(40);
      pairedUp(p);
    });

    it('with EDNS: up to the size the client advertises (at most 4096), with an OPT record back', () => {
      many(40);
      const p = ask('web.service.consul', 'SRV', { edns: 1232 });
      expect(p.size).toBeLessThanOrEqual(1232);
      expect(p.size).toBeGreaterThan(512);
      expect(truncated(p)).toBe(true);
      expect(p.additionals!.filter((r) => r.type === 'OPT')).toHaveLength(1);
      pairedUp(p);
      const big = ask('web.service.consul', 'SRV', { edns: 65000 });
      expect(big.size).toBeLessThanOrEqual(4096);
      // An advertised size below 512 still gets 512 (RFC 6891 §6.2.5).
      expect(ask('web.service.consul', 'SRV', { edns: 100 }).size).toBeGreaterThan(400);
    });

    it('over TCP: the full answer, no TC', () => {
      many(200);
      const p = ask('web.service.consul', 'SRV', { transport: 'tcp' });
      expect(truncated(p)).toBe(false);
      expect(p.answers).toHaveLength(200);
      expect(p.additionals).toHaveLength(200);
      expect(ask('web.service.consul', 'A', { transport: 'tcp' }).answers).toHaveLength(200);
      expect(truncated(ask('web.service.consul', 'A'))).toBe(true);
    });

    it('over TCP, an answer larger than 65,535 bytes is trimmed, never TC: extras first, then as many answers as fit', () => {
      // ~1,500 SRV endpoints: with their A records about 150 KB, without them about 93 KB.
      for (let k = 0; k < 1500; k++)
        reg(`w${k}`, {
          address: `10.1.${k >> 8}.${k & 255}`,
          port: 8000 + (k % 1000),
          tags: ['a-long-tag-that-makes-every-srv-owner-name-longer-than-usual'],
        });
      const oneMore = (p: Reply) =>
        encodingLength({ ...p, answers: p.answers!.slice(0, 1) } as Packet) -
        encodingLength({ ...p, answers: [] } as Packet);
      for (const name of [
        'web.service.consul',
        '_web._tcp.service.consul',
        'a-long-tag-that-makes-every-srv-owner-name-longer-than-usual.web.service.consul',
      ]) {
        const p = ask(name, 'SRV', { transport: 'tcp' });
        expect(p.size).toBeLessThanOrEqual(65535);
        expect(truncated(p)).toBe(false);
        expect(p.rcode).toBe('NOERROR');
        expect(p.additionals).toEqual([]);
        const srv = dataOf<{ target: string }>(p.answers, 'SRV');
        expect(new Set(srv.map((r) => r.target)).size).toBe(srv.length);
        // As many as fit: the sample cap, or not one record more would.
        if (srv.length < MAX_DNS_ENDPOINTS.SRV) expect(p.size + oneMore(p)).toBeGreaterThan(65535);
        else expect(srv).toHaveLength(MAX_DNS_ENDPOINTS.SRV);
        expect(srv.length).toBeGreaterThan(300);
      }
      expect(dataOf(ask('web.service.consul', 'SRV', { transport: 'tcp' }).answers, 'SRV')).toHaveLength(
        MAX_DNS_ENDPOINTS.SRV,
      );
      // A over TCP: every one of the 1,500 fits (34 bytes each), no TC.
      const a = ask('web.service.consul', 'A', { transport: 'tcp' });
      expect(truncated(a)).toBe(false);
      expect(a.answers).toHaveLength(1500);
      // UDP still says TC, so the client comes back over TCP.
      expect(truncated(ask('web.service.consul', 'SRV'))).toBe(true);
    });

    it('when every answer fits but not the additional records: all answers, no additional records, no TC (RFC 2181 §9)', () => {
      // 7 SRV records fit in 512 bytes, 7 with their A records do not.
      many(7);
      const p = ask('web.service.consul', 'SRV');
      expect(p.size).toBeLessThanOrEqual(512);
      expect(truncated(p)).toBe(false);
      expect(p.answers).toHaveLength(7);
      expect(p.additionals).toEqual([]);
    });
  });

  describe('bad messages never throw', () => {
    const raw = (bytes: Buffer, transport: 'udp' | 'tcp' = 'udp') => respond(bytes, transport, ctx);
    const rcodeOf = (bytes: Buffer | null) => (decode(bytes!) as Reply).rcode;
    const withHeader = (p: Packet) => encode(p);

    it('shorter than a header, or a response: nothing', () => {
      expect(raw(Buffer.alloc(0))).toEqual({ outcome: 'ignored', bytes: null });
      expect(raw(Buffer.from([1, 2, 3]))).toEqual({ outcome: 'ignored', bytes: null });
      const response = encode({ ...queryPacket('web.service.consul', 'A'), type: 'response' });
      expect(raw(response).bytes).toBeNull();
    });

    it('undecodable, no question, two questions, two OPT records: FORMERR with the id', () => {
      const garbage = Buffer.concat([
        Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0]),
        Buffer.from([0x3f, 0x61]),
      ]);
      const r = raw(garbage);
      expect(r.outcome).toBe('formerr');
      expect(decode(r.bytes!).id).toBe(0x1234);
      expect(rcodeOf(r.bytes)).toBe('FORMERR');
      expect(rcodeOf(raw(withHeader({ id: 1, type: 'query', questions: [] })).bytes)).toBe('FORMERR');
      const two = withHeader({
        id: 1,
        type: 'query',
        questions: [
          { name: 'a.service.consul', type: 'A' },
          { name: 'b.service.consul', type: 'A' },
        ],
      });
      expect(rcodeOf(raw(two).bytes)).toBe('FORMERR');
      const opt: Answer = {
        type: 'OPT',
        name: '.',
        udpPayloadSize: 1232,
        extendedRcode: 0,
        ednsVersion: 0,
        flags: 0,
        flag_do: false,
        options: [],
      };
      const twoOpts = withHeader({ ...queryPacket('web.service.consul', 'A'), additionals: [opt, opt] });
      expect(rcodeOf(raw(twoOpts).bytes)).toBe('FORMERR');
    });

    it('a question name that would not echo back as sent: FORMERR', () => {
      const valid = encode(queryPacket('web.service.consul', 'A'));
      const dotInLabel = Buffer.from(valid);
      dotInLabel[12 + 1 + 1] = 0x2e; // web -> w.b
      const highByte = Buffer.from(valid);
      highByte[12 + 1] = 0xff;
      const pointer = Buffer.concat([valid.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
      for (const bad of [dotInLabel, highByte, pointer]) {
        const r = raw(bad);
        expect(r.outcome).toBe('formerr');
        expect(decode(r.bytes!).questions).toEqual([]);
      }
    });

    it('another opcode: NOTIMP; EDNS version 1: BADVERS; class CH: REFUSED', () => {
      const status = withHeader({ ...queryPacket('web.service.consul', 'A'), flags: (2 << 11) | RECURSION_DESIRED });
      expect(raw(status).outcome).toBe('notimp');
      expect(rcodeOf(raw(status).bytes)).toBe('NOTIMP');
      const v1: Answer = {
        type: 'OPT',
        name: '.',
        udpPayloadSize: 1232,
        extendedRcode: 0,
        ednsVersion: 1,
        flags: 0,
        flag_do: false,
        options: [],
      };
      const badvers = decode(raw(withHeader({ ...queryPacket('web.service.consul', 'A'), additionals: [v1] })).bytes!);
      expect(badvers.additionals![0]).toMatchObject({ type: 'OPT', extendedRcode: 1 });
      const chaos = withHeader({
        id: 9,
        type: 'query',
        questions: [{ name: 'version.bind', type: 'TXT', class: 'CH' }],
      });
      expect(rcodeOf(raw(chaos).bytes)).toBe('REFUSED');
    });

    it('random bytes and mutated queries (seeded): a reply with the same id, or nothing', () => {
      const valid = encode(queryPacket('v1.web.service.dc1.dc.consul', 'SRV', { edns: 1232 }));
      reg('w1', { address: '10.0.0.1', tags: ['v1'] });
      const mutated = fc
        .array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })
        .map((edits) => {
          const b = Buffer.from(valid);
          for (const [at, v] of edits) b[at] = v;
          return b;
        });
      const anyBytes = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
      fc.assert(
        fc.property(fc.oneof(mutated, anyBytes), fc.constantFrom<'udp' | 'tcp'>('udp', 'tcp'), (message, transport) => {
          const r = raw(message, transport);
          if (r.bytes === null) return;
          const reply = decode(r.bytes);
          expect(reply.id).toBe(message.readUInt16BE(0));
          expect(reply.type).toBe('response');
          if (transport === 'udp') expect(r.bytes.length).toBeLessThanOrEqual(4096);
        }),
        { seed: 1717, numRuns: 3000 },
      );
    });
  });
});
