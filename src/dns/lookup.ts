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

export type RegistryView = Pick<NodeApi['registry'], 'listInstances' | 'listServices' | 'revision'>;

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

  /** The endpoints `service` (with `tag`, if any) resolves to in `namespace`, in registry order. */
  endpoints(namespace: string, service: string, tag: string | null): Endpoint[] {
    let instances = this.registry.listInstances(namespace, service).instances;
    if (instances.length === 0) {
      const found = this.fold(namespace, service);
      if (found === undefined) return [];
      instances = this.registry.listInstances(found.namespace, found.service).instances;
    }
    const wanted = tag?.toLowerCase() ?? null;
    const out: Endpoint[] = [];
    for (const i of instances) {
      if (wanted !== null && !i.tags.some((t) => t.toLowerCase() === wanted)) continue;
      const status = instanceStatus(i);
      if (status === 'critical') continue;
      out.push({ address: i.address, port: i.port, weight: srvWeight(i, status === 'warning') });
    }
    return out;
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
