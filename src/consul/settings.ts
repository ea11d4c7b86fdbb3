/**
 * The Consul API's settings, from `rollcall server` flags (src/server/config.ts reads them):
 *
 *   --consul-listen HOST:PORT   serve the Consul-compatible API there (off by default)
 *   --datacenter NAME           the datacenter this cluster is (default dc1)
 *   --consul-namespace NS       the Rollcall namespace Consul requests see (default `default`;
 *                               a request's `?ns=` overrides it)
 */
import type { PeerAddress } from '../transport/index.js';

export interface ConsulSettings {
  /** null: the Consul API is off. */
  readonly listen: PeerAddress | null;
  readonly datacenter: string;
  readonly namespace: string;
}

export const DEFAULT_DATACENTER = 'dc1';
export const DEFAULT_CONSUL_NAMESPACE = 'default';

/**
 * Rollcall namespace names (src/registry/validate.ts). Datacenter names are narrower, one DNS
 * label (federation's isDatacenterName, which src/server/config.ts checks --datacenter with).
 */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Why `value` cannot be a namespace name, or null when it can. */
export function nameProblem(value: string): string | null {
  return NAME.test(value)
    ? null
    : `must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit; got ${JSON.stringify(value)}`;
}
