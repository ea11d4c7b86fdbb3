/**
 * The answer to `/v1/catalog/services` and when it last changed, kept up to date from the
 * registry's change stream: per namespace, each service with at least one enabled instance
 * and the union of their tags (counted, so removing one of two instances with a tag keeps
 * it). A derived index of the node's applied state, like the native listing index: it
 * holds nothing the registry does not, and is rebuilt from the registry on a reset.
 *
 * `changedAt(ns)` moves only when the set of services or a service's tags changes, which is
 * what Consul's index for this endpoint promises: a health flip or a new instance of a known
 * service with known tags does not wake a catalog watcher.
 */
import type { Instance, RegistryEvent, ServiceSummary } from '../registry/index.js';

export interface CatalogSource {
  listServices(namespace?: string): ServiceSummary[];
  listInstances(
    namespace: string,
    service: string,
    filter?: { includeDisabled?: boolean },
  ): { readonly instances: readonly Instance[] };
}

interface ServiceTags {
  count: number;
  readonly tags: Map<string, number>;
}

export class CatalogIndex {
  /** namespace → service → its enabled instances' tags. */
  readonly #namespaces = new Map<string, Map<string, ServiceTags>>();
  readonly #changedAt = new Map<string, number>();

  /** Forgets everything and reads the registry afresh (at open, or after a snapshot was installed). */
  rebuild(source: CatalogSource): void {
    this.#namespaces.clear();
    this.#changedAt.clear();
    for (const s of source.listServices()) {
      for (const i of source.listInstances(s.namespace, s.service).instances) this.#add(i);
    }
  }

  /** The revision of the last change to the set of services or their tags in `namespace` (0: none seen). */
  changedAt(namespace: string): number {
    return this.#changedAt.get(namespace) ?? 0;
  }

  /** Takes one applied event; true when the namespace's set of services or tags changed. */
  apply(e: RegistryEvent): boolean {
    let changed = false;
    if (e.type === 'put') {
      if (e.previous?.enabled === true) changed = this.#remove(e.previous) || changed;
      if (e.instance.enabled) changed = this.#add(e.instance) || changed;
      // A tag that went and came back within the one event is no change.
      if (changed && e.previous?.enabled === true && e.instance.enabled && sameTags(e.previous, e.instance))
        changed = false;
    } else if (e.instance.enabled) {
      changed = this.#remove(e.instance);
    }
    if (changed) this.#changedAt.set(e.instance.namespace, e.revision);
    return changed;
  }

  /** Service name → sorted tags, sorted by service name: the body of /v1/catalog/services. */
  services(namespace: string): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    const services = this.#namespaces.get(namespace);
    if (services === undefined) return out;
    for (const name of [...services.keys()].sort()) out[name] = [...services.get(name)!.tags.keys()].sort();
    return out;
  }

  /** One service's tags, sorted; [] when it has no enabled instance. */
  tags(namespace: string, service: string): string[] {
    const s = this.#namespaces.get(namespace)?.get(service);
    return s === undefined ? [] : [...s.tags.keys()].sort();
  }

  #add(i: Instance): boolean {
    let services = this.#namespaces.get(i.namespace);
    if (services === undefined) {
      services = new Map();
      this.#namespaces.set(i.namespace, services);
    }
    let s = services.get(i.service);
    let changed = false;
    if (s === undefined) {
      s = { count: 0, tags: new Map() };
      services.set(i.service, s);
      changed = true;
    }
    s.count++;
    for (const t of i.tags) {
      const n = s.tags.get(t) ?? 0;
      if (n === 0) changed = true;
      s.tags.set(t, n + 1);
    }
    return changed;
  }

  #remove(i: Instance): boolean {
    const services = this.#namespaces.get(i.namespace);
    const s = services?.get(i.service);
    if (services === undefined || s === undefined) return false;
    let changed = false;
    for (const t of i.tags) {
      const n = s.tags.get(t) ?? 0;
      if (n <= 1) {
        s.tags.delete(t);
        changed = true;
      } else s.tags.set(t, n - 1);
    }
    s.count--;
    if (s.count <= 0) {
      services.delete(i.service);
      if (services.size === 0) this.#namespaces.delete(i.namespace);
      changed = true;
    }
    return changed;
  }
}

function sameTags(a: Instance, b: Instance): boolean {
  return a.tags.length === b.tags.length && a.tags.every((t, k) => t === b.tags[k]);
}
