/**
 * Resource records as dns-packet encodes them, named as Consul names them:
 *
 * - An SRV target for an instance at an IP address is `<hex address>.addr.<dc>.<domain>`
 *   (Consul's encodeIPAsFqdn: 8 hex digits for IPv4, 32 for IPv6), and that name also
 *   resolves (names.ts), so a client that drops the additional section can still look it up.
 *   Consul would name the node instead when the service runs at its node's address; a
 *   Rollcall instance has no node apart from its address (src/consul/shapes.ts), and an
 *   address is not a DNS label, so the addr form is the one name that always works.
 * - An instance at a host name: the SRV target is that name, and an A/AAAA question gets a
 *   CNAME to it (Rollcall does not recurse, so nothing more is added).
 * - The SOA is Consul's default: `ns.<domain>`, `hostmaster.<domain>`, refresh 3600, retry
 *   600, expire 86400, minimum 0 (so a name registered a moment later is not cached as
 *   absent). The serial is the registry revision the answer was read at.
 */

import { isIPv4, isIPv6 } from 'node:net';
import type { SoaAnswer, SrvAnswer, StringAnswer } from 'dns-packet';

export type AddressKind = 'ipv4' | 'ipv6' | 'host';

export function addressKind(address: string): AddressKind {
  if (isIPv4(address)) return 'ipv4';
  if (isIPv6(address)) return 'ipv6';
  return 'host';
}

/** Consul's encodeIPAsFqdn label: the address bytes in hex. */
export function addressHex(address: string): string {
  if (isIPv4(address))
    return address
      .split('.')
      .map((b) => Number(b).toString(16).padStart(2, '0'))
      .join('');
  return expandIPv6(address)
    .map((g) => g.toString(16).padStart(4, '0'))
    .join('');
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, an embedded IPv4 tail folded in). */
function expandIPv6(address: string): number[] {
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/** Where an SRV record points for an instance at `address`. */
export function srvTarget(address: string, kind: AddressKind, datacenter: string, domain: string): string {
  return kind === 'host' ? address.replace(/\.$/, '') : `${addressHex(address)}.addr.${datacenter}.${domain}`;
}

export function addressRecord(name: string, address: string, family: 4 | 6, ttl: number): StringAnswer {
  return { type: family === 4 ? 'A' : 'AAAA', name, ttl, class: 'IN', data: address };
}

export function cnameRecord(name: string, target: string, ttl: number): StringAnswer {
  return { type: 'CNAME', name, ttl, class: 'IN', data: target.replace(/\.$/, '') };
}

export function srvRecord(name: string, target: string, port: number, weight: number, ttl: number): SrvAnswer {
  return { type: 'SRV', name, ttl, class: 'IN', data: { priority: 1, weight, port, target } };
}

export function soaRecord(domain: string, serial: number): SoaAnswer {
  return {
    type: 'SOA',
    name: domain,
    ttl: 0,
    class: 'IN',
    data: {
      mname: `ns.${domain}`,
      rname: `hostmaster.${domain}`,
      serial: serial >>> 0,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: 0,
    },
  };
}
