/** What clients see of an instance: the same shape in lists, single reads, writes and watch events. */
import type { Instance } from '../registry/index.js';

export function present(i: Instance): Record<string, unknown> {
  return {
    id: i.id,
    namespace: i.namespace,
    service: i.service,
    cluster: i.cluster,
    address: i.address,
    port: i.port,
    weight: i.weight,
    tags: i.tags,
    metadata: i.metadata,
    health: i.health,
    enabled: i.enabled,
    ephemeral: i.sessionId !== null,
    ...(i.sessionId !== null ? { sessionId: i.sessionId } : {}),
    createRevision: i.createRevision,
    modRevision: i.modRevision,
    version: i.version,
  };
}
