/**
 * What the alert rules look at, read from a node: instance counts per service from the
 * applied registry, members as this node sees them, and the leader's protected services.
 */
import type { AlertSnapshot, MemberSnapshot, ServiceCounts } from '../health/index.js';
import { InstanceIndex } from './listing/instance-index.js';
import type { MonitorNode } from './node-api.js';

export function serviceCounts(node: MonitorNode): ServiceCounts[] {
  const out: ServiceCounts[] = [];
  // The listing index keeps these counts as changes apply: no pass over every instance
  // each second (that held the event loop ~50 ms a second at 50,000 instances).
  const index = InstanceIndex.live(node.registry);
  if (index !== null) {
    index.services.forRange(null, '\uffff', (_key, s) => {
      const [healthy, subhealthy, suspect, down] = s.all as [number, number, number, number];
      out.push({
        namespace: s.namespace,
        service: s.service,
        total: healthy + subhealthy + suspect + down,
        healthy,
        subhealthy,
        suspect,
        down,
      });
      return true;
    });
    return out;
  }
  for (const s of node.registry.listServices()) {
    const counts = { total: 0, healthy: 0, subhealthy: 0, suspect: 0, down: 0 };
    for (const i of node.registry.listInstances(s.namespace, s.service).instances) {
      counts.total++;
      counts[i.health]++;
    }
    out.push({ namespace: s.namespace, service: s.service, ...counts });
  }
  return out;
}

export function alertSnapshot(node: MonitorNode, now: number): AlertSnapshot {
  const st = node.status();
  const members: MemberSnapshot[] = st.members.map((m) => {
    const self = m.id === st.id;
    const applied = self ? st.appliedIndex : (m.reported?.appliedIndex ?? null);
    return {
      id: m.id,
      lag: applied === null ? null : Math.max(0, st.commitIndex - applied),
      lastContactMs: self ? 0 : m.lastContact === null ? null : Math.max(0, now - m.lastContact),
    };
  });
  return {
    services: serviceCounts(node),
    cluster: {
      self: st.id,
      leader: st.leader,
      members,
      corrupt: node.integrity.corruptMembers(),
    },
    protection: st.protection.map((p) => ({ namespace: p.namespace, service: p.service })),
  };
}
