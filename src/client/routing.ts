/**
 * Cluster routing: which of a service's clusters a consumer may be sent to.
 *
 * Reserved clusters (by default `vip`) take only their own consumers, and their consumers
 * go nowhere else: a VIP consumer is sent only to the `vip` cluster (none there means
 * none at all, never an ordinary server), and an ordinary consumer never to `vip`.
 * Other clusters (zones, say) are preferences: a consumer in zone `z1` is sent to `z1`
 * while it has instances, and to every non-reserved cluster when it has none (turn
 * `fallback` off to make that strict too).
 */
import type { Instance } from './types.js';

export interface RoutingPolicy {
  /** The consumer's own cluster: a zone, or a reserved group such as `vip`. */
  readonly consumerCluster?: string | undefined;
  /** Clusters reached only by consumers of the same cluster. Default `['vip']`. */
  readonly reservedClusters?: readonly string[] | undefined;
  /** A non-reserved consumer cluster with no instances falls back to the others. Default true. */
  readonly fallback?: boolean | undefined;
}

export const DEFAULT_RESERVED_CLUSTERS: readonly string[] = ['vip'];

/** The instances a consumer under `policy` may be sent to. */
export function route(instances: readonly Instance[], policy: RoutingPolicy = {}): readonly Instance[] {
  const reserved = policy.reservedClusters ?? DEFAULT_RESERVED_CLUSTERS;
  const own = policy.consumerCluster;
  if (own !== undefined && reserved.includes(own)) return instances.filter((i) => i.cluster === own);
  const open = reserved.length === 0 ? instances : instances.filter((i) => !reserved.includes(i.cluster));
  if (own === undefined) return open;
  const local = open.filter((i) => i.cluster === own);
  return local.length > 0 || policy.fallback === false ? local : open;
}
