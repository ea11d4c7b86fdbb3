/**
 * Consul service ID → the services holding an instance with that id, per namespace. Consul
 * IDs are unique on an agent; Rollcall ids only within a service, so the agent endpoints
 * (register, deregister, GET /v1/agent/service/:id) look an ID up across a namespace's
 * services. Walking every service for that (listServices sorts them all) cost 239 ms per
 * call at 100,000 services; this keeps the answer from the change stream instead.
 *
 * A derived index of the node's applied state, like CatalogIndex: it holds nothing the
 * registry does not, disabled instances included, and is rebuilt from the registry on a reset.
 */
import type { RegistryEvent } from '../registry/index.js';
import type { CatalogSource } from './catalog-index.js';

export class IdIndex {
  /** namespace → id → services with an instance of that id. */
  readonly #namespaces = new Map<string, Map<string, Set<string>>>();

  /** Forgets everything and reads the registry afresh (at open, or after a snapshot was installed). */
  rebuild(source: CatalogSource): void {
    this.#namespaces.clear();
    for (const s of source.listServices()) {
      for (const i of source.listInstances(s.namespace, s.service, { includeDisabled: true }).instances)
        this.#add(i.namespace, i.id, i.service);
    }
  }

  /** Takes one applied event (a put never moves an instance between services: a move is a delete and a put). */
  apply(e: RegistryEvent): void {
    const i = e.instance;
    if (e.type === 'put') this.#add(i.namespace, i.id, i.service);
    else this.#remove(i.namespace, i.id, i.service);
  }

  /** The services of `namespace` with an instance `id`, sorted. */
  services(namespace: string, id: string): string[] {
    const set = this.#namespaces.get(namespace)?.get(id);
    return set === undefined ? [] : [...set].sort();
  }

  #add(namespace: string, id: string, service: string): void {
    let ids = this.#namespaces.get(namespace);
    if (ids === undefined) {
      ids = new Map();
      this.#namespaces.set(namespace, ids);
    }
    let services = ids.get(id);
    if (services === undefined) {
      services = new Set();
      ids.set(id, services);
    }
    services.add(service);
  }

  #remove(namespace: string, id: string, service: string): void {
    const ids = this.#namespaces.get(namespace);
    const services = ids?.get(id);
    if (ids === undefined || services === undefined) return;
    services.delete(service);
    if (services.size > 0) return;
    ids.delete(id);
    if (ids.size === 0) this.#namespaces.delete(namespace);
  }
}
