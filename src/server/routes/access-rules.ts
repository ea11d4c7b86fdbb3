/** Access rules: read them (read role), replace them (admin) through the replicated setAccessRules. */
import type { FastifyInstance } from 'fastify';
import { accessRulesBody, EMPTY_RULES, normalizeRules, RulesError } from '../access-rules.js';
import type { ReadQuery, ServerContext } from '../context.js';
import { sendError } from '../errors.js';
import { getQuery } from '../schemas.js';
import { CLIENT_HEADERS } from './sessions.js';

const RULES_REPLY = {
  type: 'object',
  properties: {
    revision: { type: 'integer', description: 'Registry revision this answer reflects.' },
    rulesRevision: { type: 'integer', description: 'Revision that stored these rules (0: never set).' },
    rules: { $ref: '#/components/schemas/AccessRules' },
  },
} as const;

export function accessRuleRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get<{ Querystring: ReadQuery }>(
    '/v1/access-rules',
    {
      schema: { querystring: getQuery },
      config: {
        access: 'read',
        docs: {
          operationId: 'getAccessRules',
          tag: 'admin',
          summary: 'Read the access rules and environment label',
          responses: { 200: { description: 'The rules in force (defaults when never set).', schema: RULES_REPLY } },
          errors: ['INVALID_ARGUMENT', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      if (!(await ctx.readPoint(req.query, reply))) return reply;
      const stored = ctx.node.registry.accessRules();
      const rules = ctx.rules();
      const revision = ctx.node.registry.revision;
      reply.header('x-rollcall-revision', String(revision));
      if (stored === null || rules === null) return { revision, rulesRevision: 0, rules: EMPTY_RULES };
      return { revision, rulesRevision: stored.revision, rules: rules === 'invalid' ? stored.rules : rules.doc };
    },
  );

  app.put<{ Body: Record<string, unknown> }>(
    '/v1/access-rules',
    {
      schema: { body: accessRulesBody },
      config: {
        access: 'admin',
        docs: {
          operationId: 'setAccessRules',
          tag: 'admin',
          summary: 'Replace the access rules and environment label',
          description:
            'Replaces everything (fields left out take their defaults). A registration is refused when a deny rule matches it, or when the allow list is not empty and no allow rule matches. ' +
            'A rule matches when all the fields it gives match: namespace and service exactly (or `*`), cidr containing the instance address.',
          headers: CLIENT_HEADERS,
          responses: { 200: { description: 'Stored (replicated).', schema: RULES_REPLY } },
          errors: ['INVALID_ARGUMENT', 'INVALID_JSON', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'STALE_REQUEST', 'NO_LEADER', 'PROPOSAL_DROPPED', 'TRANSFER_IN_PROGRESS', 'SHUTTING_DOWN', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      let rules;
      try {
        rules = normalizeRules(req.body);
      } catch (err) {
        if (err instanceof RulesError) return sendError(reply, 'INVALID_ARGUMENT', err.message, { field: err.field });
        throw err;
      }
      return ctx.write(req, reply, { type: 'setAccessRules', rules: rules as unknown as Record<string, unknown> }, (r) => {
        const stored = ctx.node.registry.accessRules();
        return { revision: r.revision, rulesRevision: stored?.revision ?? r.revision, rules };
      }, { fields: { rules: 'body' } });
    },
  );
}
