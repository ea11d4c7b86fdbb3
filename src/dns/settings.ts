/**
 * The DNS interface's settings, from `rollcall server` flags (src/server/config.ts reads them):
 *
 *   --dns-listen HOST:PORT   answer DNS over UDP and TCP on that port (off by default)
 *   --dns-domain DOMAIN      the domain answered for (default `consul`)
 *   --dns-ttl SECONDS        TTL of every answer record (default 0: clients do not cache)
 *   --dns-token-file FILE    the token DNS reads with when access control is on (access.ts)
 *
 * The datacenter and the namespace looked in are the Consul API's (`--datacenter`,
 * `--consul-namespace`), so a name means the same thing over DNS and over HTTP.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { PeerAddress } from '../transport/index.js';

export interface DnsSettings {
  /** null: DNS is off. */
  readonly listen: PeerAddress | null;
  /** Lower case, no leading or trailing dot (`consul`, `rollcall.internal`). */
  readonly domain: string;
  /** Seconds. */
  readonly ttl: number;
  /**
   * --dns-token-file: a file holding the secret of the token DNS reads with (with --acl or
   * --token-file); absent or null: none, so with access control on no service name answers.
   */
  readonly tokenFile?: string | null;
}

export class DnsTokenFileError extends Error {
  override readonly name = 'DnsTokenFileError';
}

/**
 * The secret in a --dns-token-file: the file's text without surrounding white space (a
 * trailing newline is usual), 16-512 visible ASCII characters, as any token. Errors say
 * where and what is wrong, never what the file holds.
 */
export async function readDnsToken(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DnsTokenFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return dnsTokenOf(path, text);
}

/** readDnsToken, synchronously: for a SIGHUP reload, which reads one small file and must not interleave with another. */
export function readDnsTokenSync(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DnsTokenFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return dnsTokenOf(path, text);
}

function dnsTokenOf(path: string, text: string): string {
  const secret = text.trim();
  if (!/^[\x21-\x7e]{16,512}$/.test(secret))
    throw new DnsTokenFileError(
      `${path} must hold one token secret: 16-512 visible ASCII characters without spaces (a trailing newline is fine)`,
    );
  return secret;
}

export const DEFAULT_DNS_DOMAIN = 'consul';
export const DEFAULT_DNS_TTL = 0;
/** A TTL is a signed 32-bit count of seconds (RFC 2181 §8). */
export const MAX_DNS_TTL = 2 ** 31 - 1;

/** A label of a host-like name; `_` allowed, as service names and RFC 2782 labels use it. */
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** The domain as the server keeps it: lower case, without a trailing dot. */
export function normalizeDomain(value: string): string {
  return value.replace(/\.$/, '').toLowerCase();
}

/** Why `value` cannot be the DNS domain, or null when it can. */
export function domainProblem(value: string): string | null {
  const d = normalizeDomain(value);
  if (d.length === 0 || d.length > 200) return `must be 1-200 characters; got ${JSON.stringify(value)}`;
  if (!d.split('.').every((l) => LABEL.test(l)))
    return `must be dot-separated labels of [A-Za-z0-9_-] (at most 63 each); got ${JSON.stringify(value)}`;
  return null;
}

/** Why `value` cannot be the TTL, or null when it can. */
export function ttlProblem(value: number): string | null {
  return Number.isInteger(value) && value >= 0 && value <= MAX_DNS_TTL
    ? null
    : `must be an integer number of seconds, 0 to ${MAX_DNS_TTL}; got ${value}`;
}
