/**
 * What a query name asks for. The forms are Consul's (developer.hashicorp.com/consul/docs/
 * reference/dns; hashicorp/consul agent/dns.go), inside the configured domain:
 *
 *   <service>.service[.<ns>.ns][.<dc>.dc | .<dc>].<domain>        every usable instance
 *   <tag>.<service>.service[...].<domain>                          those with that tag
 *   _<service>._<tag|tcp>.service[...].<domain>                    RFC 2782; `_tcp`: no tag filter
 *   <hex address>.addr[.<dc>[.dc]].<domain>                        the address an SRV target names
 *   <domain>                                                       the zone apex (SOA)
 *
 * Structural labels (`service`, `addr`, `ns`, `dc`) and the domain match in any case, as
 * DNS names do; the service, tag, namespace and datacenter are kept as written and matched
 * case-insensitively later (lookup.ts). A tag may hold dots (`v1.2.web.service.consul` is
 * tag `v1.2`), as in Consul. The namespace label (`.ns`) is Consul Enterprise's form; here
 * it names a Rollcall namespace, defaulting to `--consul-namespace`.
 */

export type DnsName =
  /** Outside the domain: not ours to answer (REFUSED, as Consul without recursors). */
  | { readonly kind: 'foreign' }
  | { readonly kind: 'apex' }
  | {
      readonly kind: 'service';
      readonly service: string;
      /** null: any tag. */
      readonly tag: string | null;
      /** null: --consul-namespace. */
      readonly namespace: string | null;
      /** null: this datacenter. */
      readonly datacenter: string | null;
    }
  | { readonly kind: 'addr'; readonly address: string; readonly family: 4 | 6 }
  /** Inside the domain but no name that exists (NXDOMAIN). */
  | { readonly kind: 'unknown' };

const FOREIGN: DnsName = Object.freeze({ kind: 'foreign' });
const APEX: DnsName = Object.freeze({ kind: 'apex' });
const UNKNOWN: DnsName = Object.freeze({ kind: 'unknown' });

/** The labels of a presentation-form name (as dns-packet decodes it), without the root. */
export function labelsOf(name: string): string[] {
  const trimmed = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  if (trimmed.length === 0) return [];
  // dns-packet writes a dot inside a label as `\.`; such a label matches no name of ours,
  // so splitting it is harmless as long as it cannot turn into a structural label.
  return trimmed.includes('\\') ? trimmed.split(/(?<!\\)\./) : trimmed.split('.');
}

/** Parses `qname` against `domain` (lower case, no trailing dot). */
export function parseName(qname: string, domain: string): DnsName {
  const labels = labelsOf(qname);
  const domainLabels = domain.split('.');
  const cut = labels.length - domainLabels.length;
  if (cut < 0) return FOREIGN;
  for (let k = 0; k < domainLabels.length; k++) if (labels[cut + k]!.toLowerCase() !== domainLabels[k]) return FOREIGN;
  if (cut === 0) return APEX;
  return parseInside(labels.slice(0, cut));
}

function parseInside(rest: string[]): DnsName {
  let datacenter: string | null = null;
  let namespace: string | null = null;
  let n = rest.length;
  const at = (i: number): string => rest[i]!.toLowerCase();
  if (n >= 3 && at(n - 1) === 'dc') {
    datacenter = rest[n - 2]!;
    n -= 2;
  }
  if (n >= 3 && at(n - 1) === 'ns') {
    namespace = rest[n - 2]!;
    n -= 2;
  }
  // The older form without `.dc`: `<service>.service.<dc>.<domain>`.
  if (datacenter === null && namespace === null && n >= 3 && isKindLabel(at(n - 2)) && !isKindLabel(at(n - 1))) {
    datacenter = rest[n - 1]!;
    n -= 1;
  }
  if (n < 2) return UNKNOWN;
  const kind = at(n - 1);
  const parts = rest.slice(0, n - 1);
  if (kind === 'service') return serviceName(parts, namespace, datacenter);
  if (kind === 'addr' && namespace === null) return addrName(parts);
  return UNKNOWN;
}

function isKindLabel(l: string): boolean {
  return l === 'service' || l === 'addr';
}

function serviceName(parts: string[], namespace: string | null, datacenter: string | null): DnsName {
  let service: string;
  let tag: string | null;
  if (parts.length === 2 && parts[0]!.startsWith('_') && parts[1]!.startsWith('_')) {
    // RFC 2782: _<service>._<proto>; Consul reads the protocol label as a tag, `tcp` as none.
    service = parts[0]!.slice(1);
    const t = parts[1]!.slice(1);
    tag = t.toLowerCase() === 'tcp' ? null : t;
  } else {
    service = parts[parts.length - 1]!;
    tag = parts.length >= 2 ? parts.slice(0, -1).join('.') : null;
  }
  if (service.length === 0 || tag === '') return UNKNOWN;
  return { kind: 'service', service, tag, namespace, datacenter };
}

/** `7f000001` (IPv4) or 32 hex digits (IPv6), as Consul's encodeIPAsFqdn writes them. */
function addrName(parts: string[]): DnsName {
  if (parts.length !== 1) return UNKNOWN;
  const hex = parts[0]!.toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) return UNKNOWN;
  if (hex.length === 8) {
    const bytes = [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16));
    return { kind: 'addr', address: bytes.join('.'), family: 4 };
  }
  if (hex.length === 32) {
    const groups: string[] = [];
    for (let i = 0; i < 32; i += 4) groups.push(parseInt(hex.slice(i, i + 4), 16).toString(16));
    return { kind: 'addr', address: groups.join(':'), family: 6 };
  }
  return UNKNOWN;
}
