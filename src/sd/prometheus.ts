/**
 * Prometheus HTTP service discovery on the native API (issue 17):
 *
 *   GET /v1/sd/prometheus?namespace=&service=&health=usable|healthy|all
 *
 * answers what Prometheus's `http_sd_configs` reads: a JSON array of target groups, one per
 * instance, in a stable order (namespace, service, cluster, id), `[]` when there are none:
 *
 *   [{"targets": ["10.0.0.2:9000"],
 *     "labels": {"__meta_rollcall_namespace": "prod", "__meta_rollcall_service": "orders",
 *                "__meta_rollcall_cluster": "vip", "__meta_rollcall_instance": "o1",
 *                "__meta_rollcall_health": "healthy", "__meta_rollcall_tags": ",a,b,",
 *                "__meta_rollcall_metadata_zone": "a"}}]
 *
 * Tags are joined with the separator around them too (",a,b,"), as Prometheus's own Consul
 * discovery does, so a relabel regex need not care where a tag sits. Metadata keys become
 * label names with every character outside [a-zA-Z0-9_] replaced by `_`. Disabled
 * instances are left out; `health` filters as on instance lists (default `all`: a down
 * instance is still worth scraping). Linearizable by default; `consistency=serializable`
 * reads this node's state. A token needs `read`; one limited to namespaces must name one.
 *
 * An adapter like the Consul API: it reads the node's state through the node's API and
 * keeps nothing of its own. The route is src/server/routes/prometheus-sd.ts, registered by
 * buildApp like every native route; this file turns instances into target groups.
 */

import { arrayWriter, type KeyRange, namespaceRange, serviceRange } from '../consul/listing.js';
import { acceptsHealth, type HealthFilter } from '../health/index.js';
import type { Instance } from '../registry/index.js';
import type { RevisionView } from '../server/listing/revision-view.js';
import type { SliceWriter } from '../server/listing/sliced-json.js';

/** The Consul adapter's own record (src/consul/check-record.ts): not the user's metadata. */
const HIDDEN_METADATA = new Set(['rollcall.consul']);

export interface TargetGroup {
  readonly targets: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

/** A metadata key as a Prometheus label name suffix (Prometheus's SanitizeLabelName). */
export function sanitizeLabelName(key: string): string {
  return key.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** `host:port`, with an IPv6 address in brackets (Go's net.JoinHostPort). */
export function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function targetGroup(i: Instance): TargetGroup {
  const labels: Record<string, string> = {
    __meta_rollcall_namespace: i.namespace,
    __meta_rollcall_service: i.service,
    __meta_rollcall_cluster: i.cluster,
    __meta_rollcall_instance: i.id,
    __meta_rollcall_health: i.health,
    __meta_rollcall_tags: `,${i.tags.join(',')},`,
  };
  // Keys are sorted (the registry keeps them so): of two keys that sanitize alike, the last wins, always the same one.
  for (const [k, v] of Object.entries(i.metadata))
    if (!HIDDEN_METADATA.has(k)) labels[`__meta_rollcall_metadata_${sanitizeLabelName(k)}`] = v;
  return { targets: [hostPort(i.address, i.port)], labels };
}

export interface TargetQuery {
  readonly namespace?: string;
  readonly service?: string;
  readonly health: HealthFilter;
}

/** The instance index's keys the query reads: one service, one namespace, or every key. */
function targetRange(q: TargetQuery): KeyRange {
  if (q.namespace === undefined) return { after: '', end: '\uffff' };
  return q.service === undefined ? namespaceRange(q.namespace) : serviceRange(q.namespace, q.service);
}

/**
 * Each instance's target group as JSON, encoded once (issue 21, as the instance lists do in
 * src/server/listing/writers.ts): an Instance is frozen and replaced by a new object on
 * every change, so an entry cannot go stale, and the WeakMap lets it go with its instance.
 * Prometheus asks again every refresh interval, most often for nothing that changed.
 */
const encodedGroups = new WeakMap<Instance, string>();

/** `JSON.stringify(targetGroup(i))`, from the cache after the first time. */
export function targetGroupJson(i: Instance): string {
  let text = encodedGroups.get(i);
  if (text === undefined) {
    text = JSON.stringify(targetGroup(i));
    encodedGroups.set(i, text);
  }
  return text;
}

/**
 * The groups for a namespace (or all) and a service (or all), as a JSON array written in
 * slices from `view` (issue 22's rule: at 200,000 instances, building and encoding the
 * whole answer in one turn held the event loop for over a second). The index's key order is
 * (namespace, service, cluster, id), the order the answer always had.
 */
export function targetGroupsWriter(view: RevisionView, q: TargetQuery): SliceWriter {
  return arrayWriter(view, targetRange(q), (i) =>
    i.enabled && (q.service === undefined || i.service === q.service) && acceptsHealth(q.health, i.health)
      ? targetGroupJson(i)
      : null,
  );
}
