/**
 * What `POST /v1/cluster/members` takes as a `peerAddress`: HOST:PORT where HOST is a DNS
 * name, an IPv4 address or a bracketed IPv6 address and PORT is 1-65535. The transport's
 * own parser (src/transport/address.ts) takes anything before the last colon, so an
 * address that could never be dialled would otherwise be stored in the membership and
 * retried for ever (issue 22 item 5).
 */
import { isIPv4, isIPv6 } from 'node:net';

// Labels of letters, digits, '-' and (as container DNS names use it) '_', not starting or
// ending with '-'; at most 63 characters each and 253 in all.
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Why `text` cannot be a peer address, or null when it can. */
export function peerAddressProblem(text: string): string | null {
  const m = /^(\[[^\]]*\]|[^:[\]]*):([0-9]{1,5})$/.exec(text);
  if (!m) return `must be HOST:PORT (an IPv6 address in brackets: [::1]:7104), got ${JSON.stringify(text)}`;
  const host = m[1]!;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return `the port must be 1-65535, got ${m[2]}`;
  if (host.startsWith('[')) return isIPv6(host.slice(1, -1)) ? null : `${host} is not an IPv6 address`;
  if (isIPv4(host)) return null;
  if (/^[0-9.]+$/.test(host)) return `${host} is not an IPv4 address`;
  const labels = host.split('.');
  if (host.length === 0 || host.length > 253 || !labels.every((l) => LABEL.test(l))) {
    return `${JSON.stringify(host)} is not a host name (labels of letters, digits and '-', 1-63 characters each) or an IP address`;
  }
  return null;
}
