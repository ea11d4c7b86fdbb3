/** What clients see of an instance: the same shape in lists, single reads, writes and watch events. */
import type { Instance as InstanceView } from '../client/types.js';
import type { Instance } from '../registry/index.js';

/** The wire shape is the SDK's `Instance` type, so the two cannot drift apart. */
export function present(i: Instance): InstanceView {
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
