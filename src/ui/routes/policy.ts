/**
 * GET /v1/health/policy (the policy in force, the built-in defaults, and optionally what one
 * service resolves to) and PUT /v1/health/policy (admin: replace it through the log).
 */
import type { FastifyInstance } from 'fastify';
import type { HealthPolicy } from '../../health/index.js';
import { DEFAULT_CLUSTER_ALERTS, DEFAULT_SERVICE_ALERTS, DEFAULT_THRESHOLDS, parseHealthPolicy, resolveClusterAlerts, resolvePolicy } from '../../health/index.js';
import { sendError, sendNodeError } from '../../server/errors.js';
import type { HealthDeps } from '../deps.js';

type Query = { namespace?: string; service?: string };

const NAME = { type: 'string', minLength: 1, maxLength: 128 } as const;

export function policyRoutes(app: FastifyInstance, deps: HealthDeps): void {
  const current = (): HealthPolicy | null => deps.policy?.() ?? null;

  app.get<{ Querystring: Query }>(
    '/v1/health/policy',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { namespace: { ...NAME, description: 'With service: also show what this service resolves to.' }, service: { ...NAME, description: 'With namespace.' } },
        },
      },
      config: {
        access: 'read',
        docs: {
          operationId: 'getHealthPolicy',
          tag: 'admin',
          summary: 'The health policy: thresholds and alert limits per namespace or service',
          description: '`policy` is what an admin stored (null: none), `defaults` the built-in values it overrides; with `namespace` and `service`, `resolved` is what applies to that service. See docs/health.md.',
          responses: { 200: { description: 'The policy.', schema: { type: 'object', properties: { policy: { type: ['object', 'null'] }, defaults: { type: 'object' }, resolved: { type: 'object' } } } } },
          errors: ['INVALID_ARGUMENT'],
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      if ((q.namespace === undefined) !== (q.service === undefined)) return sendError(reply, 'INVALID_ARGUMENT', 'namespace and service: give both or neither', { field: q.namespace === undefined ? 'namespace' : 'service' });
      const policy = current();
      return {
        policy,
        defaults: { health: DEFAULT_THRESHOLDS, alerts: DEFAULT_SERVICE_ALERTS, cluster: DEFAULT_CLUSTER_ALERTS },
        ...(q.namespace !== undefined && q.service !== undefined ? { resolved: { ...resolvePolicy(policy, q.namespace, q.service), cluster: resolveClusterAlerts(policy) } } : {}),
      };
    },
  );

  const setPolicy = deps.setPolicy;
  if (setPolicy === undefined) return;
  app.put<{ Body: unknown }>(
    '/v1/health/policy',
    {
      config: {
        access: 'admin',
        docs: {
          operationId: 'setHealthPolicy',
          tag: 'admin',
          summary: 'Replace the health policy (replicated)',
          description: 'Body: a policy document `{"defaults"?, "namespaces"?, "services"?, "cluster"?}` (docs/health.md). Checked whole, including every override merged over what it overrides; the first field at fault is named.',
          responses: { 200: { description: 'Stored.', schema: { type: 'object', properties: { revision: { type: 'integer' }, policy: { type: 'object' } } } } },
          errors: ['INVALID_ARGUMENT', 'INVALID_JSON', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'NO_LEADER', 'PROPOSAL_DROPPED', 'TRANSFER_IN_PROGRESS', 'SHUTTING_DOWN', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      const parsed = parseHealthPolicy(req.body);
      if (!parsed.ok) return sendError(reply, 'INVALID_ARGUMENT', parsed.message, { field: parsed.field });
      try {
        const { revision } = await setPolicy(parsed.value);
        reply.header('x-rollcall-revision', String(revision));
        return { revision, policy: parsed.value };
      } catch (err) {
        return sendNodeError(reply, err);
      }
    },
  );
}
