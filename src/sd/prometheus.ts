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
 * keeps nothing of its own.
 */
import type { FastifyInstance } from 'fastify';
import { acceptsHealth, type HealthFilter } from '../health/index.js';
import type { Instance } from '../registry/index.js';
import { sendNodeError } from '../server/errors.js';
import type { NodeApi } from '../server/node-api.js';

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
  for (const [k, v] of Object.entries(i.metadata)) if (!HIDDEN_METADATA.has(k)) labels[`__meta_rollcall_metadata_${sanitizeLabelName(k)}`] = v;
  return { targets: [hostPort(i.address, i.port)], labels };
}

/** The groups for a namespace (or all) and a service (or all), in a stable order. */
export function targetGroups(registry: NodeApi['registry'], q: { namespace?: string; service?: string; health: HealthFilter }): TargetGroup[] {
  const out: TargetGroup[] = [];
  for (const s of registry.listServices(q.namespace)) {
    if (q.service !== undefined && s.service !== q.service) continue;
    for (const i of registry.listInstances(s.namespace, s.service).instances) if (acceptsHealth(q.health, i.health)) out.push(targetGroup(i));
  }
  return out;
}

const NAME = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;

export function prometheusSdRoutes(app: FastifyInstance, node: NodeApi, timeoutMs: number): void {
  app.get<{ Querystring: { namespace?: string; service?: string; health?: HealthFilter; consistency?: 'linearizable' | 'serializable' } }>(
    '/v1/sd/prometheus',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            namespace: { ...NAME, description: 'Only this namespace (default: every namespace).' },
            service: { ...NAME, description: 'Only services of this name.' },
            health: { type: 'string', enum: ['healthy', 'usable', 'all'], description: 'healthy: only healthy instances; usable: healthy, subhealthy and suspect; all (default).' },
            consistency: { type: 'string', enum: ['linearizable', 'serializable'] },
          },
        },
      },
      config: {
        access: 'read',
        namespace: 'query',
        docs: {
          operationId: 'prometheusSd',
          tag: 'instances',
          summary: 'Prometheus HTTP service discovery',
          description: 'Target groups for `http_sd_configs`: one per enabled instance, sorted by namespace, service, cluster and id, with `__meta_rollcall_*` labels (docs/prometheus-sd.md).',
          responses: { 200: { description: 'Target groups.', schema: { type: 'array', items: { type: 'object', properties: { targets: { type: 'array', items: { type: 'string' } }, labels: { type: 'object' } } } } } },
          errors: ['INVALID_ARGUMENT', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      if (req.query.consistency !== 'serializable') {
        try {
          await node.readBarrier(timeoutMs);
        } catch (err) {
          return sendNodeError(reply, err);
        }
      }
      const groups = targetGroups(node.registry, {
        ...(req.query.namespace === undefined ? {} : { namespace: req.query.namespace }),
        ...(req.query.service === undefined ? {} : { service: req.query.service }),
        health: req.query.health ?? 'all',
      });
      return reply.type('application/json; charset=utf-8').send(groups);
    },
  );
}
