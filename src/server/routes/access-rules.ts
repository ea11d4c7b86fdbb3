/**
 * Access rules: read them (read role), replace them (admin) through the replicated
 * setAccessRules, optionally compare-and-set with `If-Match: <rulesRevision>` exactly as
 * PUT /v1/health/policy does. The rules are enforced by the state machine when a register
 * or update is applied (src/registry/access.ts), not by this server.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  CIDR_LENGTH,
  ENVIRONMENT_LENGTH,
  MAX_RULES,
  NAME_PATTERN,
  RULE_NAME_LENGTH,
  SCOPE_LENGTH,
  SCOPE_PATTERN,
} from '../../registry/access.js';
import type { SetAccessRules } from '../../registry/index.js';
import { EMPTY_RULES, parseAccessRules } from '../../registry/index.js';
import type { ServerContext } from '../context.js';
import { sendError } from '../errors.js';
import { getQuery } from '../schemas.js';
import { CLIENT_HEADERS, parseIfMatch } from './headers.js';

const SCOPE = Type.String({ minLength: 1, maxLength: SCOPE_LENGTH, pattern: SCOPE_PATTERN });
const RULE = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: RULE_NAME_LENGTH, pattern: NAME_PATTERN })),
    namespace: Type.Optional(SCOPE),
    service: Type.Optional(SCOPE),
    cidr: Type.Optional(Type.String({ minLength: 2, maxLength: CIDR_LENGTH })),
  },
  { additionalProperties: false },
);

/**
 * The body of `PUT /v1/access-rules`: its shape, refused with the field named before the
 * handler runs. The state machine's parseAccessRules checks the same and what a schema
 * cannot say (a rule gives at least one of namespace, service, cidr; the cidr syntax), and
 * fills in the defaults.
 */
export const accessRulesBody = Type.Object(
  {
    environment: Type.Optional(
      Type.Union([Type.String({ minLength: 1, maxLength: ENVIRONMENT_LENGTH, pattern: NAME_PATTERN }), Type.Null()]),
    ),
    requireEnvironment: Type.Optional(Type.Boolean()),
    allow: Type.Optional(Type.Array(RULE, { maxItems: MAX_RULES })),
    deny: Type.Optional(Type.Array(RULE, { maxItems: MAX_RULES })),
  },
  { additionalProperties: false },
);

const RULES_REPLY = {
  type: 'object',
  properties: {
    revision: { type: 'integer', description: 'Registry revision this answer reflects.' },
    rulesRevision: {
      type: 'integer',
      description: 'Revision that stored these rules (0: never set). Send it as If-Match to compare-and-set.',
    },
    rules: { $ref: '#/components/schemas/AccessRules' },
  },
} as const;

export function accessRuleRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.withTypeProvider<TypeBoxTypeProvider>().get(
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

  app.withTypeProvider<TypeBoxTypeProvider>().put(
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
            'A rule matches when all the fields it gives match: namespace and service exactly (or `*`), cidr containing the instance address. ' +
            'Registrations are judged by the state machine when they are applied, against the rules in force at that point of the log. ' +
            'The same rules sent again change nothing. With `If-Match: <rulesRevision>` (0: only if none are stored) they are stored only if the rules have not changed since.',
          headers: [
            {
              name: 'if-match',
              required: false,
              description: 'Compare-and-set: the `rulesRevision` this change is based on (0: none stored yet).',
            },
            ...CLIENT_HEADERS,
          ],
          responses: { 200: { description: 'Stored (replicated).', schema: RULES_REPLY } },
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
      let expectedRevision: number | undefined;
      const header = req.headers['if-match'];
      if (header !== undefined) {
        const n = parseIfMatch(header);
        if (n === null)
          return sendError(reply, 'INVALID_ARGUMENT', 'if-match: must be one rules revision, like 12 or "12"', {
            field: 'if-match',
          });
        expectedRevision = n;
      }
      // The state machine's own parse (defaults filled in): a bad document is refused here, without a log round trip.
      const parsed = parseAccessRules(req.body);
      if (!parsed.ok) return sendError(reply, 'INVALID_ARGUMENT', parsed.message, { field: parsed.field });
      const rules = parsed.value;
      const command: SetAccessRules = {
        type: 'setAccessRules',
        rules: { ...rules },
        ...(expectedRevision === undefined ? {} : { expectedRevision }),
      };
      // `version` is the revision that stored the rules in force after this command (this
      // one's, or the earlier one's when the same rules were sent again).
      return ctx.write(
        req,
        reply,
        command,
        (r) => ({ revision: r.revision, rulesRevision: r.version ?? r.revision, rules }),
        {
          fields: { rules: '', expectedRevision: 'if-match' },
        },
      );
    },
  );
}
