/**
 * GET /v1/health/policy (the policy in force and the revision that stored it, the built-in
 * defaults, and optionally what one service resolves to) and PUT /v1/health/policy (admin:
 * replace it through the log, optionally compare-and-set with If-Match).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { HealthPolicy } from '../../health/index.js';
import {
  DEFAULT_CLUSTER_ALERTS,
  DEFAULT_SERVICE_ALERTS,
  DEFAULT_THRESHOLDS,
  parseHealthPolicy,
  resolveClusterAlerts,
  resolvePolicy,
} from '../../health/index.js';
import type { ClientRef, CommandResult, SetHealthPolicy } from '../../registry/index.js';
import { clientRef, type ServerContext } from '../context.js';
import { sendCommandError, sendError, sendNodeError } from '../errors.js';
import { Consistency } from '../schemas.js';
import { CLIENT_HEADERS, parseIfMatch } from './headers.js';
import type { HealthDeps, PolicyWriteOptions } from './health.js';

/** Any name up to 128 characters: the policy's overrides are looked up by it, never stored. */
const PolicyName = (description: string) => Type.String({ minLength: 1, maxLength: 128, description });

const policyQuery = Type.Object(
  {
    namespace: Type.Optional(PolicyName('With service: also show what this service resolves to.')),
    service: Type.Optional(PolicyName('With namespace.')),
    consistency: Type.Optional(
      Consistency('linearizable (default) or serializable (local, possibly stale; works without a leader).'),
    ),
  },
  { additionalProperties: false },
);

const POLICY_REPLY = {
  type: 'object',
  properties: {
    revision: { type: 'integer', description: 'Registry revision this answer reflects.' },
    policyRevision: {
      type: 'integer',
      description: 'Revision that stored the policy (0: none stored). Send it as If-Match to compare-and-set.',
    },
    policy: {
      type: ['object', 'null'],
      description: 'The stored policy document (null: none, the built-in defaults apply).',
    },
  },
} as const;

export function healthPolicyRoutes(app: FastifyInstance, deps: HealthDeps): void {
  const stored = () => deps.policy?.() ?? null;

  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/health/policy',
    {
      schema: { querystring: policyQuery },
      config: {
        access: 'read',
        docs: {
          operationId: 'getHealthPolicy',
          tag: 'admin',
          summary: 'The health policy: thresholds and alert limits per namespace or service',
          description:
            '`policy` is what an admin stored (null: none) and `policyRevision` the revision that stored it (0: none); `defaults` are the built-in values it overrides; ' +
            'with `namespace` and `service`, `resolved` is what applies to that service. See docs/health.md.',
          responses: {
            200: {
              description: 'The policy.',
              schema: {
                ...POLICY_REPLY,
                properties: { ...POLICY_REPLY.properties, defaults: { type: 'object' }, resolved: { type: 'object' } },
              },
            },
          },
          errors: ['INVALID_ARGUMENT', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      if ((q.namespace === undefined) !== (q.service === undefined))
        return sendError(reply, 'INVALID_ARGUMENT', 'namespace and service: give both or neither', {
          field: q.namespace === undefined ? 'namespace' : 'service',
        });
      if (q.consistency !== 'serializable') {
        try {
          await deps.node.readBarrier(deps.timeoutMs ?? 5000);
        } catch (err) {
          return sendNodeError(reply, err);
        }
      }
      // Synchronous from here: the policy and the revision are read at one point.
      const current = stored();
      const policy = current?.policy ?? null;
      const revision = deps.node.registry.revision;
      reply.header('x-rollcall-revision', String(revision));
      return {
        revision,
        policyRevision: current?.revision ?? 0,
        policy,
        defaults: { health: DEFAULT_THRESHOLDS, alerts: DEFAULT_SERVICE_ALERTS, cluster: DEFAULT_CLUSTER_ALERTS },
        ...(q.namespace !== undefined && q.service !== undefined
          ? { resolved: { ...resolvePolicy(policy, q.namespace, q.service), cluster: resolveClusterAlerts(policy) } }
          : {}),
      };
    },
  );

  const setPolicy = deps.setPolicy;
  if (setPolicy === undefined) return;
  // No body schema: parseHealthPolicy, the state machine's own check, judges the whole
  // document (overrides merged over what they override) and names the first field at fault.
  app.put(
    '/v1/health/policy',
    {
      config: {
        access: 'admin',
        docs: {
          operationId: 'setHealthPolicy',
          tag: 'admin',
          summary: 'Replace the health policy (replicated)',
          description:
            'Body: a policy document `{"defaults"?, "namespaces"?, "services"?, "cluster"?}` (docs/health.md), replacing the stored one whole. ' +
            'Checked whole, including every override merged over what it overrides; the first field at fault is named. ' +
            'The same document sent again changes nothing. With `If-Match: <policyRevision>` (0: only if none is stored) it is stored only if the policy has not changed since.',
          headers: [
            {
              name: 'if-match',
              required: false,
              description: 'Compare-and-set: the `policyRevision` this change is based on (0: none stored yet).',
            },
            ...CLIENT_HEADERS,
          ],
          responses: {
            200: {
              description: 'Stored (replicated) and applied on the node that answers.',
              schema: { ...POLICY_REPLY, properties: { ...POLICY_REPLY.properties, changed: { type: 'boolean' } } },
            },
          },
          errors: [
            'INVALID_ARGUMENT',
            'INVALID_JSON',
            'BODY_TOO_LARGE',
            'UNSUPPORTED_MEDIA_TYPE',
            'VERSION_MISMATCH',
            'STALE_REQUEST',
            'NO_LEADER',
            'PROPOSAL_DROPPED',
            'TRANSFER_IN_PROGRESS',
            'SHUTTING_DOWN',
            'TIMEOUT',
          ],
        },
      },
    },
    async (req, reply) => {
      const options: { expectedRevision?: number; client?: ClientRef } = {};
      const header = req.headers['if-match'];
      if (header !== undefined) {
        const n = parseIfMatch(header);
        if (n === null)
          return sendError(reply, 'INVALID_ARGUMENT', 'if-match: must be one policy revision, like 12 or "12"', {
            field: 'if-match',
          });
        options.expectedRevision = n;
      }
      // Exactly-once like every write: a retry whose first attempt applied gets the first
      // answer, not a VERSION_MISMATCH against its own change.
      const client = clientRef(req);
      if (client !== null && 'error' in client)
        return sendError(reply, 'INVALID_ARGUMENT', client.error, { field: client.field });
      if (client !== null) options.client = client;
      // Checked here too, so a bad document is refused without a round trip through the log.
      const parsed = parseHealthPolicy(req.body);
      if (!parsed.ok) return sendError(reply, 'INVALID_ARGUMENT', parsed.message, { field: parsed.field });
      const policy: HealthPolicy = parsed.value;
      let result;
      try {
        result = await setPolicy(policy, options);
      } catch (err) {
        return sendNodeError(reply, err);
      }
      if (!result.ok)
        return sendCommandError(reply, result.field === 'expectedRevision' ? { ...result, field: 'if-match' } : result);
      reply.header('x-rollcall-revision', String(result.revision));
      return {
        revision: result.revision,
        policyRevision: result.version ?? result.revision,
        changed: result.changed,
        policy,
      };
    },
  );
}

/**
 * The server's side of PUT /v1/health/policy (HealthDeps.setPolicy): proposes the replicated
 * `setHealthPolicy` through this node (a follower forwards it to the leader like any write)
 * and hands back the applied result, counted in the same proposal metrics as every other write.
 */
export function healthPolicyWriter(
  ctx: ServerContext,
): (policy: HealthPolicy, options: PolicyWriteOptions) => Promise<CommandResult> {
  return async (policy, { expectedRevision, client }) => {
    const command: SetHealthPolicy = {
      type: 'setHealthPolicy',
      policy,
      ...(expectedRevision === undefined ? {} : { expectedRevision }),
      ...(client === undefined ? {} : { client }),
    };
    const started = performance.now();
    try {
      const { result } = await ctx.node.submit(command, ctx.limits.timeoutMs);
      ctx.metrics.proposed(command.type, result.ok ? 'ok' : 'rejected', (performance.now() - started) / 1000);
      return result;
    } catch (err) {
      ctx.metrics.proposed(command.type, 'error', null);
      throw err;
    }
  };
}
