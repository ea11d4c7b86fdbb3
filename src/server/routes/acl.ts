/**
 * Replicated access tokens (`--acl`, docs/security.md "Access control"): bootstrap once per
 * cluster, then create, list and revoke with an admin token.
 *
 * The secret is made here, on the node that takes the request, and answered only in the
 * 201 of bootstrap or create; the command carries only its SHA-256 digest, so the secret is
 * in no log entry, LevelDB record or snapshot. These writes take no exactly-once client
 * headers: a retry answered from the dedup table could not give back the first attempt's
 * secret (which nobody stored), so a retry simply creates another token.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type {
  AclToken,
  BootstrapAcl,
  ClientCommand,
  CommandOk,
  CreateToken,
  RevokeToken,
} from '../../registry/index.js';
import { LIMITS, parseCommand } from '../../registry/index.js';
import { newTokenSecret } from '../acl.js';
import type { ServerContext } from '../context.js';
import { sendCommandError, sendError, sendNodeError } from '../errors.js';

const NAME = {
  type: 'string',
  minLength: 1,
  maxLength: LIMITS.nameLength,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
} as const;
const SCOPES = (description: string) =>
  ({ type: 'array', minItems: 1, maxItems: LIMITS.tokenScopes, items: NAME, description }) as const;

const TOKEN = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'The token id (not secret): what revoke takes.' },
    name: { type: 'string' },
    role: { type: 'string', enum: ['read', 'register', 'admin'] },
    namespaces: { type: 'array', items: { type: 'string' }, description: 'Absent: every namespace.' },
    servicePrefixes: { type: 'array', items: { type: 'string' }, description: 'Absent: every service.' },
    createRevision: { type: 'integer', description: 'The revision that created it.' },
  },
} as const;

const CREATED = {
  type: 'object',
  properties: {
    ...TOKEN.properties,
    secret: { type: 'string', description: 'The bearer secret: shown only in this answer, never again.' },
  },
} as const;

const CREATE_BODY = {
  type: 'object',
  required: ['name', 'role'],
  additionalProperties: false,
  properties: {
    name: NAME,
    role: { type: 'string', enum: ['read', 'register', 'admin'] },
    namespaces: SCOPES('Limit the token to these namespaces (absent: all).'),
    servicePrefixes: SCOPES('Limit the token to services whose name starts with one of these (absent: all).'),
  },
} as const;

const BOOTSTRAP_BODY = {
  anyOf: [{ type: 'object', additionalProperties: false, properties: { name: NAME } }, { type: 'null' }],
} as const;

const WRITE_ERRORS = [
  'NO_LEADER',
  'PROPOSAL_DROPPED',
  'TRANSFER_IN_PROGRESS',
  'SHUTTING_DOWN',
  'TIMEOUT',
  'CLUSTER_NOT_UPGRADED',
  'ACL_OFF',
] as const;

export function shownToken(t: AclToken): Record<string, unknown> {
  const out: Record<string, unknown> = { id: t.id, name: t.name, role: t.role };
  if (t.namespaces !== null) out['namespaces'] = t.namespaces;
  if (t.servicePrefixes !== null) out['servicePrefixes'] = t.servicePrefixes;
  out['createRevision'] = t.createRevision;
  return out;
}

export function aclRoutes(app: FastifyInstance, ctx: ServerContext, aclOn: boolean): void {
  const off = (reply: FastifyReply): FastifyReply =>
    sendError(reply, 'ACL_OFF', 'access control is off on this node: start every node with --acl (docs/security.md)');

  /** Proposes without a client ref (see above); answers the error itself and returns null on failure. */
  const submit = async (reply: FastifyReply, command: ClientCommand): Promise<CommandOk | null> => {
    const checked = parseCommand(command);
    if (!checked.ok) {
      sendCommandError(reply, checked);
      return null;
    }
    const started = performance.now();
    try {
      const { result } = await ctx.node.submit(command, ctx.limits.timeoutMs);
      ctx.metrics.proposed(command.type, result.ok ? 'ok' : 'rejected', (performance.now() - started) / 1000);
      if (!result.ok) {
        sendCommandError(reply, result);
        return null;
      }
      reply.header('x-rollcall-revision', String(result.revision));
      return result;
    } catch (err) {
      ctx.metrics.proposed(command.type, 'error', null);
      sendNodeError(reply, err);
      return null;
    }
  };

  app.post<{ Body: { name?: string } | null }>(
    '/v1/acl/bootstrap',
    {
      schema: { body: BOOTSTRAP_BODY },
      config: {
        // Open before bootstrap by design; the state machine lets it succeed once per cluster.
        access: 'public',
        docs: {
          operationId: 'bootstrapAcl',
          tag: 'admin',
          summary: 'Create the first admin token (once per cluster)',
          description:
            'With `--acl`: creates an admin token (body `{"name"?}`, default name `bootstrap`) and answers its secret, once per cluster; ' +
            'a second call, through any node, is refused with 409 ACL_BOOTSTRAPPED (decided when the command is applied, so two concurrent calls cannot both succeed).',
          responses: {
            201: { description: 'The first admin token, with its secret (shown only now).', schema: CREATED },
          },
          errors: ['ACL_BOOTSTRAPPED', 'INVALID_ARGUMENT', 'INVALID_JSON', 'UNSUPPORTED_MEDIA_TYPE', ...WRITE_ERRORS],
        },
      },
    },
    async (req, reply) => {
      if (!aclOn) return off(reply);
      const fresh = newTokenSecret();
      const command: BootstrapAcl = {
        type: 'bootstrapAcl',
        id: fresh.id,
        name: req.body?.name ?? 'bootstrap',
        role: 'admin',
        secretHash: fresh.secretHash,
      };
      const ok = await submit(reply, command);
      if (ok === null) return reply;
      return reply
        .code(201)
        .send({ id: fresh.id, secret: fresh.secret, name: command.name, role: 'admin', createRevision: ok.revision });
    },
  );

  app.post<{
    Body: { name: string; role: 'read' | 'register' | 'admin'; namespaces?: string[]; servicePrefixes?: string[] };
  }>(
    '/v1/acl/tokens',
    {
      schema: { body: CREATE_BODY },
      config: {
        access: 'admin',
        docs: {
          operationId: 'createToken',
          tag: 'admin',
          summary: 'Create an access token',
          description:
            'Replicated: once acknowledged, the token works on every node. The secret is in this answer only; the cluster stores its SHA-256 digest.',
          responses: { 201: { description: 'The token, with its secret (shown only now).', schema: CREATED } },
          errors: [
            'INVALID_ARGUMENT',
            'INVALID_JSON',
            'BODY_TOO_LARGE',
            'UNSUPPORTED_MEDIA_TYPE',
            'TOKEN_EXISTS',
            ...WRITE_ERRORS,
          ],
        },
      },
    },
    async (req, reply) => {
      if (!aclOn) return off(reply);
      const fresh = newTokenSecret();
      const b = req.body;
      const command: CreateToken = {
        type: 'createToken',
        id: fresh.id,
        name: b.name,
        role: b.role,
        ...(b.namespaces === undefined ? {} : { namespaces: b.namespaces }),
        ...(b.servicePrefixes === undefined ? {} : { servicePrefixes: b.servicePrefixes }),
        secretHash: fresh.secretHash,
      };
      const ok = await submit(reply, command);
      if (ok === null) return reply;
      const stored = ctx.node.registry.tokens().find((t) => t.id === fresh.id);
      const shown =
        stored === undefined
          ? { id: fresh.id, name: b.name, role: b.role, createRevision: ok.revision }
          : shownToken(stored);
      return reply.code(201).send({ ...shown, secret: fresh.secret });
    },
  );

  app.get(
    '/v1/acl/tokens',
    {
      config: {
        access: 'admin',
        docs: {
          operationId: 'listTokens',
          tag: 'admin',
          summary: 'List the access tokens (never their secrets)',
          responses: {
            200: {
              description: 'Every token, by id (linearizable).',
              schema: {
                type: 'object',
                properties: { revision: { type: 'integer' }, tokens: { type: 'array', items: TOKEN } },
              },
            },
          },
          errors: ['NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT', 'ACL_OFF'],
        },
      },
    },
    async (_req, reply) => {
      if (!aclOn) return off(reply);
      if (!(await ctx.readPoint({}, reply))) return reply;
      return { revision: ctx.node.registry.revision, tokens: ctx.node.registry.tokens().map(shownToken) };
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/acl/tokens/:id',
    {
      schema: {
        params: {
          type: 'object',
          properties: { id: { type: 'string', minLength: 1, maxLength: LIMITS.tokenIdLength } },
        },
      },
      config: {
        access: 'admin',
        docs: {
          operationId: 'revokeToken',
          tag: 'admin',
          summary: 'Revoke an access token',
          description: 'Replicated: a node refuses the token as soon as it has applied the revoke.',
          responses: {
            200: {
              description: 'Revoked.',
              schema: { type: 'object', properties: { revision: { type: 'integer' }, id: { type: 'string' } } },
            },
          },
          errors: ['INVALID_ARGUMENT', 'TOKEN_NOT_FOUND', ...WRITE_ERRORS],
        },
      },
    },
    async (req, reply) => {
      if (!aclOn) return off(reply);
      const command: RevokeToken = { type: 'revokeToken', id: req.params.id };
      const ok = await submit(reply, command);
      if (ok === null) return reply;
      return { revision: ok.revision, id: req.params.id };
    },
  );
}
