/**
 * GET /v1/sd/prometheus: Prometheus HTTP service discovery (target groups for
 * `http_sd_configs`, built by src/sd/prometheus.ts). Linearizable by default;
 * `consistency=serializable` reads this node's state. See docs/prometheus-sd.md.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { sendSliced } from '../../consul/listing.js';
import { HEALTH_FILTERS } from '../../health/index.js';
import { targetGroupsWriter } from '../../sd/prometheus.js';
import type { ServerContext } from '../context.js';
import { sendNodeError } from '../errors.js';
import { openLister } from '../listing/serve.js';
import { Consistency, Name, StringEnum } from '../schemas.js';

const sdQuery = Type.Object(
  {
    namespace: Type.Optional(Name('Only this namespace (default: every namespace).')),
    service: Type.Optional(Name('Only services of this name.')),
    health: Type.Optional(
      StringEnum(
        HEALTH_FILTERS,
        'healthy: only healthy instances; usable: healthy, subhealthy and suspect; all (default).',
      ),
    ),
    consistency: Type.Optional(Consistency()),
  },
  { additionalProperties: false },
);

export function prometheusSdRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { node } = ctx;
  // Written in slices from the shared listing index (no answer holds the event loop).
  const lister = openLister(app, node.registry, { waitMs: ctx.limits.minRevisionTimeoutMs });
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/sd/prometheus',
    {
      schema: { querystring: sdQuery },
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
