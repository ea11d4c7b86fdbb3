/**
 * Which instances a service name resolves to, read from the node's own registry (no read
 * barrier, no leader needed: DNS answers are local, like Consul's default `allow_stale`).
 *
 * - Health as the Consul API maps it (src/consul/shapes.ts, instanceStatus): critical
 *   (Rollcall `down`, or a failing TTL check) is left out; passing and warning stay, and a
 *   `suspect` instance (expiry held back by protection) counts as passing, so a network
 *   fault does not empty DNS either. Disabled instances are left out.
 * - Names match case-insensitively, as DNS names do: service and namespace first exactly
 *   (the cheap, common case), then against a lower-cased index of the registry's services
 *   that is rebuilt only when the registry's revision has moved since it was built.
 * - Tags match case-insensitively too (Consul's DNS does the same).
 * - SRV weight: the instance's weight, or its Consul `Weights.Warning` while it warns.
 */
import { instanceStatus, readRecord } from '../consul/index.js';
import type { Instance } from '../registry/index.js';
import type { NodeApi } from '../server/node-api.js';

export type RegistryView = Pick<NodeApi['registry'], 'eachInstance' | 'listServices' | 'revision'>;

/**
 * The most endpoints one answer is built from. A DNS message over TCP holds at most 65,535
 * bytes, and the smallest record (an A record) takes over 30, so no answer can carry more
 * than about 2,000 of them: a service with more is answered from a uniform random sample of
 * this size (work bounded per question however large the service; a client sees a random
 * subset either way, as it would after the shuffle and truncation).
 */
export const MAX_DNS_ENDPOINTS = 2048;

/** One instance as DNS shows it. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** SRV weight, 0..65535. */
  readonly weight: number;
}

export class ServiceDirectory {
  /** lower(namespace) \0 lower(service) -> the names as registered; built at `builtAt`. */
  private folded = new Map<string, { namespace: string; service: string }>();
  private builtAt = -1;

  constructor(private readonly registry: RegistryView) {}

  /**
   * The endpoints `service` (with `tag`, if any) resolves to in `namespace`, in no particular
   * order: all of them, or a uniform sample of `limit` when more qualify (reservoir sampling
   * with `random`, one pass and no sort).
   */
  endpoints(namespace: string, service: string, tag: string | null, random: () => number, limit = MAX_DNS_ENDPOINTS): Endpoint[] {
    let found = this.collect(namespace, service, tag, random, limit);
    if (found === null) {
      const folded = this.fold(namespace, service);
      if (folded === undefined) return [];
      found = this.collect(folded.namespace, folded.service, tag, random, limit) ?? [];
    }
    return found;
  }

  /** null when the service has no enabled instance under this exact name (then the case-folded name is tried). */
  private collect(namespace: string, service: string, tag: string | null, random: () => number, limit: number): Endpoint[] | null {
    const wanted = tag?.toLowerCase() ?? null;
    const out: Endpoint[] = [];
    let any = false;
    let seen = 0;
    for (const i of this.registry.eachInstance(namespace, service)) {
      if (!i.enabled) continue;
      any = true;
      if (wanted !== null && !i.tags.some((t) => t.toLowerCase() === wanted)) continue;
      const status = instanceStatus(i);
      if (status === 'critical') continue;
      seen++;
      if (out.length < limit) {
        out.push({ address: i.address, port: i.port, weight: srvWeight(i, status === 'warning') });
      } else {
        const k = Math.floor(random() * seen);
        if (k < limit) out[k] = { address: i.address, port: i.port, weight: srvWeight(i, status === 'warning') };
      }
    }
    return any ? out : null;
  }

  private fold(namespace: string, service: string): { namespace: string; service: string } | undefined {
    const revision = this.registry.revision;
    if (revision !== this.builtAt) {
      const folded = new Map<string, { namespace: string; service: string }>();
      // Sorted by namespace then service: of two names that fold alike, the first wins, always the same one.
      for (const s of this.registry.listServices()) {
        const key = `${s.namespace.toLowerCase()}\u0000${s.service.toLowerCase()}`;
        if (!folded.has(key)) folded.set(key, { namespace: s.namespace, service: s.service });
      }
      this.folded = folded;
      this.builtAt = revision;
    }
    return this.folded.get(`${namespace.toLowerCase()}\u0000${service.toLowerCase()}`);
  }
}

function srvWeight(i: Instance, warning: boolean): number {
  const w = warning ? (readRecord(i).warningWeight ?? i.weight) : i.weight;
  return Math.max(0, Math.min(65535, w));
}

/** Fisher-Yates in place with the given source of [0, 1) numbers; returns `items`. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let k = items.length - 1; k > 0; k--) {
    const j = Math.floor(random() * (k + 1));
    const t = items[k]!;
    items[k] = items[j]!;
    items[j] = t;
  }
  return items;
}
