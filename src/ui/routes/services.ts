/**
 * GET /v1/services: every service (of a namespace) with per-health instance counts and,
 * with `instances=true`, the instances themselves, all read at one revision. One call
 * gives a consistent picture to start a watch from (`fromRevision` = revision + 1).
 */
import type { FastifyInstance } from 'fastify';
import { sendNodeError } from '../../server/errors.js';
import { present } from '../../server/present.js';
import type { UiDeps } from '../deps.js';

type Query = { namespace?: string; instances?: boolean; includeDisabled?: boolean; consistency?: 'linearizable' | 'serializable' };

const NAME = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;

export const servicesQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    namespace: { ...NAME, description: 'Only this namespace.' },
    instances: { type: 'boolean', description: 'Include each service\'s instances (default false).' },
    includeDisabled: { type: 'boolean', description: 'With instances=true: also disabled instances (default true: this is an operator\'s view).' },
    consistency: { type: 'string', enum: ['linearizable', 'serializable'], description: 'linearizable (default) or serializable (local, possibly stale; works without a leader).' },
  },
} as const;

export function serviceRoutes(app: FastifyInstance, deps: UiDeps): void {
  const { node } = deps;
  app.get<{ Querystring: Query }>(
    '/v1/services',
    {
      schema: { querystring: servicesQuery },
      config: {
        access: 'read',
        namespace: 'query',
        docs: {
          operationId: 'listServices',
          tag: 'instances',
          summary: 'List services, with health counts and optionally their instances',
          description:
            'Services with at least one instance, sorted by namespace then service, all read at one `revision`. Counts cover enabled instances. ' +
            'With `instances=true` each service carries its instances (the Instance shape), so a watch from `revision + 1` continues the picture without a gap.',
          responses: { 200: { description: 'The services.', schema: { type: 'object', required: ['revision', 'services'], properties: { revision: { type: 'integer' }, services: { type: 'array', items: { type: 'object' } } } } } },
          errors: ['INVALID_ARGUMENT', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      if (q.consistency !== 'serializable') {
        try {
          await node.readBarrier(deps.timeoutMs ?? 5000);
        } catch (err) {
          return sendNodeError(reply, err);
        }
      }
      // Everything below is synchronous: one revision, no apply in between.
      const reg = node.registry;
      const revision = reg.revision;
      const services = reg.listServices(q.namespace).map((s) => {
        const all = reg.listInstances(s.namespace, s.service, { includeDisabled: true }).instances;
        const health = { healthy: 0, subhealthy: 0, suspect: 0, down: 0, disabled: 0 };
        for (const i of all) {
          if (i.enabled) health[i.health]++;
          else health.disabled++;
        }
        const shown = q.includeDisabled === false ? all.filter((i) => i.enabled) : all;
        return {
          namespace: s.namespace,
          service: s.service,
          instanceCount: s.instanceCount,
          revision: s.revision,
          health,
          ...(q.instances === true ? { instances: shown.map(present) } : {}),
        };
      });
      reply.header('x-rollcall-revision', String(revision));
      return { revision, services };
    },
  );
}
