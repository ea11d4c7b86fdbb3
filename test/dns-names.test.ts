/**
 * DNS name parsing (src/dns/names.ts): the forms Consul answers (docs/consul.md, DNS), the
 * RFC 2782 form with `_tcp` as no tag, datacenter and namespace labels in any case, the
 * addr names SRV targets use, and everything else as a name that does not exist.
 */
import { describe, expect, it } from 'vitest';
import { addressHex, domainProblem, normalizeDomain, parseName } from '../src/dns/index.js';
import { labelsOf } from '../src/dns/names.js';

const svc = (
  service: string,
  over: { tag?: string | null; namespace?: string | null; datacenter?: string | null } = {},
) => ({
  kind: 'service',
  service,
  tag: over.tag ?? null,
  namespace: over.namespace ?? null,
  datacenter: over.datacenter ?? null,
});

describe('parseName', () => {
  it.each([
    ['web.service.consul', svc('web')],
    ['web.service.consul.', svc('web')],
    ['WEB.Service.CONSUL', svc('WEB')],
    ['web.service.dc1.dc.consul', svc('web', { datacenter: 'dc1' })],
    ['web.service.dc1.consul', svc('web', { datacenter: 'dc1' })],
    ['web.service.DC2.DC.consul', svc('web', { datacenter: 'DC2' })],
    ['web.service.prod.ns.consul', svc('web', { namespace: 'prod' })],
    ['web.service.prod.ns.dc1.dc.consul', svc('web', { namespace: 'prod', datacenter: 'dc1' })],
    ['v1.web.service.consul', svc('web', { tag: 'v1' })],
    ['v1.2.web.service.consul', svc('web', { tag: 'v1.2' })],
    ['v1.web.service.dc1.dc.consul', svc('web', { tag: 'v1', datacenter: 'dc1' })],
    ['_web._tcp.service.consul', svc('web')],
    ['_web._TCP.service.consul', svc('web')],
    ['_web._v1.service.consul', svc('web', { tag: 'v1' })],
    ['_web._v1.service.dc1.dc.consul', svc('web', { tag: 'v1', datacenter: 'dc1' })],
    // One underscore only: the older form, a tag `_web` on service `v1`... as Consul reads it.
    ['_web.v1.service.consul', svc('v1', { tag: '_web' })],
    ['service.service.consul', svc('service')],
    ['dc.service.consul', svc('dc')],
    // Datacenter names are [A-Za-z0-9-] (--datacenter): a hyphen is one label like any other.
    ['web.service.eu-west.dc.consul', svc('web', { datacenter: 'eu-west' })],
    ['web.service.eu-west.consul', svc('web', { datacenter: 'eu-west' })],
    ['v1.web.service.eu-west-1.dc.consul', svc('web', { tag: 'v1', datacenter: 'eu-west-1' })],
    ['_web._tcp.service.EU-West.dc.consul', svc('web', { datacenter: 'EU-West' })],
  ])('%s', (qname, expected) => {
    expect(parseName(qname, 'consul')).toEqual(expected);
  });

  it('a multi-label domain, matched in any case', () => {
    expect(parseName('web.service.Rollcall.Internal', 'rollcall.internal')).toEqual(svc('web'));
    expect(parseName('rollcall.internal', 'rollcall.internal')).toEqual({ kind: 'apex' });
    expect(parseName('web.service.consul', 'rollcall.internal')).toEqual({ kind: 'foreign' });
  });

  it('the apex and names outside the domain', () => {
    expect(parseName('consul', 'consul')).toEqual({ kind: 'apex' });
    expect(parseName('consul.', 'consul')).toEqual({ kind: 'apex' });
    expect(parseName('example.org', 'consul')).toEqual({ kind: 'foreign' });
    expect(parseName('', 'consul')).toEqual({ kind: 'foreign' });
    expect(parseName('notconsul', 'consul')).toEqual({ kind: 'foreign' });
    // The domain must be whole labels: `xconsul` is not inside `consul`.
    expect(parseName('web.service.xconsul', 'consul')).toEqual({ kind: 'foreign' });
  });

  it.each([
    'service.consul',
    'web.consul',
    'web.node.consul',
    'web.query.consul',
    '.service.consul',
    '_._tcp.service.consul',
    'dc1.dc.consul',
    'web.service.prod.ns.consul.extra.consul',
    'a.b.c.consul',
  ])('%s does not exist', (qname) => {
    expect(parseName(qname, 'consul')).toEqual({ kind: 'unknown' });
  });

  it('addr names: 8 hex digits for IPv4, 32 for IPv6, with or without a datacenter', () => {
    expect(parseName('0a000001.addr.dc1.consul', 'consul')).toEqual({ kind: 'addr', address: '10.0.0.1', family: 4 });
    expect(parseName('7F000001.ADDR.consul', 'consul')).toEqual({ kind: 'addr', address: '127.0.0.1', family: 4 });
    expect(parseName('0a000001.addr.dc1.dc.consul', 'consul')).toEqual({
      kind: 'addr',
      address: '10.0.0.1',
      family: 4,
    });
    expect(parseName('fd000000000000000000000000000003.addr.dc1.consul', 'consul')).toEqual({
      kind: 'addr',
      address: 'fd00:0:0:0:0:0:0:3',
      family: 6,
    });
    for (const bad of [
      '0a0000.addr.dc1.consul',
      'zz000001.addr.dc1.consul',
      'a.0a000001.addr.dc1.consul',
      '0a000001.addr.prod.ns.consul',
    ]) {
      expect(parseName(bad, 'consul')).toEqual({ kind: 'unknown' });
    }
  });

  it('a label holding an escaped dot is one label, and matches nothing structural', () => {
    expect(labelsOf('a\\.b.service.consul')).toEqual(['a\\.b', 'service', 'consul']);
    expect(parseName('web.service\\.x.consul', 'consul')).toEqual({ kind: 'unknown' });
  });
});

describe('addressHex: the SRV target label, as Consul encodes it', () => {
  it.each([
    ['10.0.0.1', '0a000001'],
    ['127.0.0.1', '7f000001'],
    ['255.255.255.255', 'ffffffff'],
    ['::1', '00000000000000000000000000000001'],
    ['fd00::3', 'fd000000000000000000000000000003'],
    ['2001:db8:85a3::8a2e:370:7334', '20010db885a3000000008a2e03707334'],
    ['::ffff:10.0.0.1', '00000000000000000000ffff0a000001'],
  ])('%s -> %s', (address, hex) => {
    expect(addressHex(address)).toBe(hex);
  });

  it('round-trips through an addr name', () => {
    for (const a of ['10.1.2.3', '192.168.0.254'])
      expect(parseName(`${addressHex(a)}.addr.dc1.consul`, 'consul')).toMatchObject({ kind: 'addr', address: a });
  });
});

describe('the --dns-domain setting', () => {
  it('normalizes case and a trailing dot', () => {
    expect(normalizeDomain('Consul.')).toBe('consul');
    expect(normalizeDomain('rollcall.Internal')).toBe('rollcall.internal');
  });

  it.each(['', '.', 'a..b', '-a', 'a b', 'x'.repeat(64)])('refuses %j', (d) => {
    expect(domainProblem(d)).not.toBeNull();
  });

  it.each(['consul', 'rollcall.internal', 'svc.cluster.local'])('takes %s', (d) => {
    expect(domainProblem(d)).toBeNull();
  });
});
