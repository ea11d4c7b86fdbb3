/**
 * GET /v1/sd/prometheus: Prometheus HTTP service discovery (target groups for
 * `http_sd_configs`, built by src/sd/prometheus.ts). Linearizable by default;
 * `consistency=serializable` reads this node's state. See docs/prometheus-sd.md.
 */
import type { FastifyInstance } from 'fastify';
import { sendSliced } from '../../consul/listing.js';
import type { HealthFilter } from '../../health/index.js';
import { targetGroupsWriter } from '../../sd/prometheus.js';
import type { ServerContext } from '../context.js';
import { sendNodeError } from '../errors.js';
import { openLister } from '../listing/serve.js';

type Query = {
  namespace?: string;
  service?: string;
  health?: HealthFilter;
  consistency?: 'linearizable' | 'serializable';
};

const NAME = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;

export function prometheusSdRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { node } = ctx;
  // Written in slices from the shared listing index (no answer holds the event loop).
  const lister = openLister(app, node.registry, { waitMs: ctx.limits.minRevisionTimeoutMs });
  app.get<{ Querystring: Query }>(
    '/v1/sd/prometheus',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            namespace: { ...NAME, description: 'Only this namespace (default: every namespace).' },
            service: { ...NAME, description: 'Only services of this name.' },
            health: {
              type: 'string',
              enum: ['healthy', 'usable', 'all'],
              description: 'healthy: only healthy instances; usable: healthy, subhealthy and suspect; all (default).',
            },
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
          description:
            'Target groups for `http_sd_configs`: one per enabled instance, sorted by namespace, service, cluster and id, with `__meta_rollcall_*` labels (docs/prometheus-sd.md).',
          responses: {
            200: {
              description: 'Target groups.',
              schema: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { targets: { type: 'array', items: { type: 'string' } }, labels: { type: 'object' } },
                },
              },
            },
          },
          errors: ['INVALID_ARGUMENT', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      if (req.query.consistency !== 'serializable') {
        try {
          await node.readBarrier(ctx.limits.timeoutMs);
        } catch (err) {
          return sendNodeError(reply, err);
        }
      }
      const query = {
        ...(req.query.namespace === undefined ? {} : { namespace: req.query.namespace }),
        ...(req.query.service === undefined ? {} : { service: req.query.service }),
        health: req.query.health ?? 'all',
      };
      return sendSliced(lister, reply, (view) => targetGroupsWriter(view, query));
    },
  );
}
