/**
 * Rollcall instances in Consul's shapes (field names and types as Consul's own API docs and
 * its Go client decode them). Pure functions of an instance and the datacenter.
 *
 * - Health: healthy → passing, subhealthy → warning, down → critical, and suspect (expiry
 *   held back by protection) → passing, so a `passing` client is not emptied by a network
 *   fault either. A TTL check registered through this API adds the status its service last
 *   reported; an instance shows the worse of the two.
 * - Node: Consul places services on nodes (machines running an agent). A Rollcall instance
 *   runs at an address, so each distinct instance address is one Consul node, named by the
 *   address, with a stable UUID derived from it.
 * - Indexes: CreateIndex and ModifyIndex are the instance's createRevision and modRevision.
 * - Lists and maps are `[]` and `{}`, never null.
 */
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Health, Instance, SettableHealth } from '../registry/index.js';
import { type ConsulStatus, readRecord, userMeta } from './check-record.js';

export type { ConsulStatus } from './check-record.js';

const SEVERITY: Readonly<Record<ConsulStatus, number>> = { passing: 0, warning: 1, critical: 2 };

/** The one health mapping (docs/consul.md). */
export function statusOfHealth(h: Health): ConsulStatus {
  switch (h) {
    case 'healthy':
    case 'suspect':
      return 'passing';
    case 'subhealthy':
      return 'warning';
    case 'down':
      return 'critical';
  }
}

/** The health a TTL check's status sets (setCheckHealth): the mapping above, read backwards. */
export function healthOfStatus(s: ConsulStatus): SettableHealth {
  switch (s) {
    case 'passing':
      return 'healthy';
    case 'warning':
      return 'subhealthy';
    case 'critical':
      return 'down';
  }
}

export function worseStatus(a: ConsulStatus, b: ConsulStatus): ConsulStatus {
  return SEVERITY[a] >= SEVERITY[b] ? a : b;
}

/** What Consul shows for an instance: its health, and its TTL check's status when it has one. */
export function instanceStatus(i: Instance): ConsulStatus {
  const check = readRecord(i).check;
  const fromHealth = statusOfHealth(i.health);
  return check === null ? fromHealth : worseStatus(fromHealth, check.status);
}

/** The Consul node an instance runs on: named by its address. */
export function nodeName(i: Pick<Instance, 'address'>): string {
  return i.address;
}

/** A stable UUID for a node name (Consul node IDs are UUIDs). */
export function nodeId(name: string): string {
  const h = createHash('sha256').update(`rollcall-node\u0000${name}`, 'utf8').digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Consul's Node.TaggedAddresses: a map of strings (the Go client decodes map[string]string). */
function taggedNodeAddresses(address: string): Record<string, string> {
  return isIPv6(address)
    ? { lan: address, lan_ipv6: address, wan: address, wan_ipv6: address }
    : { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address };
}

export function nodeShape(i: Instance, datacenter: string): Record<string, unknown> {
  const name = nodeName(i);
  return {
    ID: nodeId(name),
    Node: name,
    Address: i.address,
    Datacenter: datacenter,
    TaggedAddresses: taggedNodeAddresses(i.address),
    Meta: {},
    CreateIndex: i.createRevision,
    ModifyIndex: i.modRevision,
  };
}

function weights(i: Instance): { Passing: number; Warning: number } {
  return { Passing: i.weight, Warning: readRecord(i).warningWeight ?? i.weight };
}

/** AgentService: /v1/agent/services, /v1/agent/service/:id, and `Service` of a health entry. */
export function agentService(i: Instance, datacenter: string): Record<string, unknown> {
  return {
    Kind: '',
    ID: i.id,
    Service: i.service,
    Tags: [...i.tags],
    Meta: userMeta(i),
    Port: i.port,
    Address: i.address,
    TaggedAddresses: {},
    Weights: weights(i),
    EnableTagOverride: false,
    CreateIndex: i.createRevision,
    ModifyIndex: i.modRevision,
    Datacenter: datacenter,
  };
}

/** CatalogService: one element of /v1/catalog/service/:name. */
export function catalogService(i: Instance, datacenter: string): Record<string, unknown> {
  const node = nodeShape(i, datacenter);
  return {
    ID: node['ID'],
    Node: node['Node'],
    Address: i.address,
    Datacenter: datacenter,
    TaggedAddresses: node['TaggedAddresses'],
    NodeMeta: {},
    ServiceKind: '',
    ServiceID: i.id,
    ServiceName: i.service,
    ServiceTags: [...i.tags],
    ServiceAddress: i.address,
    ServiceTaggedAddresses: {},
    ServiceWeights: weights(i),
    ServiceMeta: userMeta(i),
    ServicePort: i.port,
    ServiceEnableTagOverride: false,
    CreateIndex: i.createRevision,
    ModifyIndex: i.modRevision,
  };
}

/**
 * The instance's one check: its TTL check when it was registered with one, else a check
 * standing for Rollcall's own health (CheckID `rollcall:<ID>`, Type `rollcall`).
 */
export function healthCheck(i: Instance): Record<string, unknown> {
  const check = readRecord(i).check;
  const status = instanceStatus(i);
  const healthNote = `Rollcall health: ${i.health}`;
  const base = {
    Node: nodeName(i),
    ServiceID: i.id,
    ServiceName: i.service,
    ServiceTags: [...i.tags],
    Interval: '',
    Timeout: '',
    ExposedPort: 0,
    Definition: {},
    CreateIndex: i.createRevision,
    ModifyIndex: i.modRevision,
  };
  if (check === null) {
    return {
      ...base,
      CheckID: `rollcall:${i.id}`,
      Name: 'Rollcall health',
      Status: status,
      Notes: '',
      Output: healthNote,
      Type: 'rollcall',
    };
  }
  // When Rollcall's health is what makes it worse, say so rather than repeat an old note.
  const output = status !== check.status ? healthNote : check.output;
  return {
    ...base,
    CheckID: check.id,
    Name: check.name,
    Status: status,
    Notes: check.notes,
    Output: output,
    Type: 'ttl',
  };
}

/** ServiceEntry: one element of /v1/health/service/:name. */
export function serviceEntry(i: Instance, datacenter: string): Record<string, unknown> {
  return { Node: nodeShape(i, datacenter), Service: agentService(i, datacenter), Checks: [healthCheck(i)] };
}
