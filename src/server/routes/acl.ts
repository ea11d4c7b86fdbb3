/**
 * Replicated access tokens (`--acl`, docs/security.md "Access control"): bootstrap once per
 * cluster, then create, list and revoke with an admin token; any token may describe itself
 * (`GET /v1/acl/token/self`, with --token-file tokens too).
 *
 * The secret is made here, on the node that takes the request, and answered only in the
 * 201 of bootstrap or create; the command carries only its SHA-256 digest, so the secret is
 * in no log entry, LevelDB record or snapshot.
 *
 * Exactly-once, as every write (docs/api.md "Exactly-once writes"): with
 * `x-rollcall-client-id` and `x-rollcall-seq`, a retry applies once. A replayed revoke
 * answers as the first did. A replayed create or bootstrap cannot: the retry made a fresh
 * id and secret, the state machine answered it from the deduplication table (the first
 * attempt's revision), and the first secret is stored nowhere. So it answers 409
 * (TOKEN_EXISTS, or ACL_BOOTSTRAPPED) naming the token the first attempt created, and
 * creates nothing. The node's own re-forwarding of a write whose leader went away re-sends
 * the same command (same id and secret), so that replay finds its token and answers 201.
 * No apply behaviour changed for this (the state machine always deduplicated token
 * commands that carry a client), so it needs no cluster-version gate.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AclToken, BootstrapAcl, CreateToken, RevokeToken } from '../../registry/index.js';
import { LIMITS } from '../../registry/index.js';
import { newTokenSecret } from '../acl.js';
import type { Principal, Role } from '../auth.js';
import type { ServerContext } from '../context.js';
import { sendError } from '../errors.js';
import { type ContinueToken, decodeContinue, encodeContinue } from '../listing/continue-token.js';
import { DEFAULT_LIST_MAX_ITEMS } from '../listing/serve.js';

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

const SELF = {
  type: 'object',
  properties: {
    ...TOKEN.properties,
    id: { type: 'string', description: 'A replicated token: its id. Absent for a --token-file token.' },
    createRevision: { type: 'integer', description: 'A replicated token: the revision that created it.' },
    source: {
      type: 'string',
      enum: ['replicated', 'token-file'],
      description: "Where the token is defined: the replicated state (--acl) or this node's --token-file.",
    },
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

/** A token's description of itself (`GET /v1/acl/token/self`; the Consul API's too): never a secret. */
export interface TokenSelf {
  /** A replicated token's id; absent for a --token-file token. */
  readonly id?: string;
  readonly name: string;
  readonly role: Role;
  /** Absent: every namespace. */
  readonly namespaces?: readonly string[];
  /** Absent: every service (--token-file tokens have none). */
  readonly servicePrefixes?: readonly string[];
  /** A replicated token's creating revision; absent for a --token-file token. */
  readonly createRevision?: number;
  readonly source: 'replicated' | 'token-file';
}

/**
 * What `p` (an identified request's principal) is, from this node's applied state; null: a
 * replicated token that is no longer there (revoked since it was identified).
 */
export function describeSelf(
  registry: Pick<ServerContext['node']['registry'], 'tokens'>,
  p: Principal,
): TokenSelf | null {
  if (p.tokenId === undefined)
    return {
      name: p.name,
      role: p.role,
      ...(p.namespaces === null ? {} : { namespaces: p.namespaces }),
      source: 'token-file',
    };
  const id = p.tokenId;
  const t = registry.tokens().find((x) => x.id === id);
  if (t === undefined) return null;
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    ...(t.namespaces === null ? {} : { namespaces: t.namespaces }),
    ...(t.servicePrefixes === null ? {} : { servicePrefixes: t.servicePrefixes }),
    createRevision: t.createRevision,
    source: 'replicated',
  };
}

/**
 * A create or bootstrap whose answer came from the deduplication table (see above): the
 * token the first attempt made is the one created at the replayed revision.
 */
function replayedCreate(
  ctx: ServerContext,
  req: FastifyRequest,
  reply: FastifyReply,
  revision: number,
  code: 'TOKEN_EXISTS' | 'ACL_BOOTSTRAPPED',
): FastifyReply {
  const first = ctx.node.registry.tokens().find((t) => t.createRevision === revision);
  const request = `this request (x-rollcall-client-id ${JSON.stringify(req.headers['x-rollcall-client-id'])}, x-rollcall-seq ${String(req.headers['x-rollcall-seq'])})`;
  const made =
    first === undefined
      ? `created a token at revision ${revision} that has been revoked since`
      : `created token ${first.id} at revision ${revision}; its secret was in that first answer only and is stored nowhere`;
  const lost =
    code === 'ACL_BOOTSTRAPPED'
      ? 'if that answer was lost, create an admin token with a --token-file break-glass token and revoke this one (docs/security.md)'
      : 'if that answer was lost, revoke it and create another';
  return sendError(reply, code, `${request} was applied before: it ${made}. Nothing was created now; ${lost}`, {
    field: 'x-rollcall-seq',
    revision,
    ...(first === undefined ? {} : { id: first.id }),
    replayed: true,
  });
}

const LIST_QUERY = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: 1_000_000_000,
      description:
        'At most this many tokens (capped at --list-max-items, 10,000 by default); `continue` is set when more are left. Without it, more tokens than the cap are refused (LIMIT_EXCEEDED).',
    },
    continue: {
      type: 'string',
      minLength: 1,
      maxLength: 8192,
      description: 'The `continue` of the previous page: the tokens after the last one it held, by id.',
    },
  },
} as const;

/** What a `continue` of this listing is bound to (continue-token.ts). */
const TOKEN_LISTING = 'acl-tokens';

export function aclRoutes(app: FastifyInstance, ctx: ServerContext, aclOn: boolean): void {
  const off = (reply: FastifyReply): FastifyReply =>
    sendError(reply, 'ACL_OFF', 'access control is off on this node: start every node with --acl (docs/security.md)');
  const maxItems = ctx.limits.listMaxItems ?? DEFAULT_LIST_MAX_ITEMS;
  const stored = (id: string): AclToken | undefined => ctx.node.registry.tokens().find((t) => t.id === id);

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
            'a second call, through any node, is refused with 409 ACL_BOOTSTRAPPED (decided when the command is applied, so two concurrent calls cannot both succeed). ' +
            'A retry with the same `x-rollcall-client-id` and `x-rollcall-seq` creates nothing and answers 409 ACL_BOOTSTRAPPED with `replayed: true` and the `id` of the token the first attempt made.',
          responses: {
            201: { description: 'The first admin token, with its secret (shown only now).', schema: CREATED },
          },
          errors: [
            'ACL_BOOTSTRAPPED',
            'INVALID_ARGUMENT',
            'INVALID_JSON',
            'UNSUPPORTED_MEDIA_TYPE',
            'STALE_REQUEST',
            ...WRITE_ERRORS,
          ],
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
      return ctx.write(req, reply, command, (ok) => {
        const made = stored(fresh.id);
        if (made === undefined) return replayedCreate(ctx, req, reply, ok.revision, 'ACL_BOOTSTRAPPED');
        return reply.code(201).send({ ...shownToken(made), secret: fresh.secret });
      });
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
            'Replicated: once acknowledged, the token works on every node. The secret is in this answer only; the cluster stores its SHA-256 digest. ' +
            'A retry with the same `x-rollcall-client-id` and `x-rollcall-seq` creates nothing and answers 409 TOKEN_EXISTS with `replayed: true` and the `id` of the token the first attempt made (its secret cannot be shown again).',
          responses: { 201: { description: 'The token, with its secret (shown only now).', schema: CREATED } },
          errors: [
            'INVALID_ARGUMENT',
            'INVALID_JSON',
            'BODY_TOO_LARGE',
            'UNSUPPORTED_MEDIA_TYPE',
            'TOKEN_EXISTS',
            'STALE_REQUEST',
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
      return ctx.write(req, reply, command, (ok) => {
        const made = stored(fresh.id);
        if (made === undefined) return replayedCreate(ctx, req, reply, ok.revision, 'TOKEN_EXISTS');
        return reply.code(201).send({ ...shownToken(made), secret: fresh.secret });
      });
    },
  );

  app.get<{ Querystring: { limit?: number; continue?: string } }>(
    '/v1/acl/tokens',
    {
      schema: { querystring: LIST_QUERY },
      config: {
        access: 'admin',
        docs: {
          operationId: 'listTokens',
          tag: 'admin',
          summary: 'List the access tokens (never their secrets), in pages',
          description:
            'Sorted by id; linearizable. Pages: `limit` and `continue`, as every listing; without `limit`, more tokens than --list-max-items (10,000) are refused (LIMIT_EXCEEDED). ' +
            'Tokens keep no history, so each page reads the tokens as they are when it is served (never older than the previous page): a token created or revoked between pages may or may not be listed, none twice.',
          responses: {
            200: {
              description: 'The tokens, by id.',
              schema: {
                type: 'object',
                properties: {
                  revision: { type: 'integer' },
                  tokens: { type: 'array', items: TOKEN },
                  continue: {
                    type: 'string',
                    description: 'Present when more are left: pass it as `continue` for the next page.',
                  },
                },
              },
            },
          },
          errors: ['INVALID_ARGUMENT', 'LIMIT_EXCEEDED', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT', 'ACL_OFF'],
        },
      },
    },
    async (req, reply) => {
      if (!aclOn) return off(reply);
      const q = req.query;
      let after: ContinueToken | null = null;
      if (q.continue !== undefined) {
        after = decodeContinue(q.continue);
        if (after === null || after.listing !== TOKEN_LISTING)
          return sendError(
            reply,
            'INVALID_ARGUMENT',
            'continue: not a token of this listing; pass the `continue` of the previous page of GET /v1/acl/tokens unchanged',
            { field: 'continue' },
          );
      }
      // Every page is a linearizable read, so a later page never reads older tokens than the first.
      if (!(await ctx.readPoint({}, reply))) return reply;
      const all = ctx.node.registry.tokens();
      const limit = q.limit === undefined ? (after === null ? null : maxItems) : Math.min(q.limit, maxItems);
      if (limit === null && all.length > maxItems)
        return sendError(
          reply,
          'LIMIT_EXCEEDED',
          `this listing holds ${all.length} tokens, more than the ${maxItems} one answer may hold (--list-max-items): pass limit (at most ${maxItems}) and follow continue`,
          { field: 'limit', limit: maxItems, count: all.length },
        );
      const start = after === null ? 0 : firstAfter(all, after.after);
      const end = limit === null ? all.length : Math.min(all.length, start + limit);
      const page = all.slice(start, end);
      const revision = ctx.node.registry.revision;
      const last = page.at(-1);
      return {
        revision,
        tokens: page.map(shownToken),
        ...(end < all.length && last !== undefined
          ? {
              continue: encodeContinue({
                revision: after?.revision ?? revision,
                after: last.id,
                listing: TOKEN_LISTING,
              }),
            }
          : {}),
      };
    },
  );

  app.get(
    '/v1/acl/token/self',
    {
      config: {
        // Any valid token, whatever its role and scopes: who holds it may know what it is.
        access: 'token',
        docs: {
          operationId: 'tokenSelf',
          tag: 'admin',
          summary: 'Which token am I: the calling token, described (never its secret)',
          description:
            "As Consul's `GET /v1/acl/token/self`: the token the request carries, with the fields the token list shows and `source`. " +
            'A replicated token (`--acl`): `id`, `name`, `role`, `namespaces` and `servicePrefixes` (absent: unlimited), `createRevision`, `source: "replicated"`. ' +
            'A `--token-file` token has no id, revision or service prefixes: `name` (its `name`, or `token#<position>`), `role`, `namespaces`, `source: "token-file"`. ' +
            "Read from this node's applied state: a token revoked here is refused (401) like on every route. " +
            'A node with neither `--acl` nor `--token-file` checks no token: 409 ACL_OFF.',
          responses: { 200: { description: 'The calling token.', schema: SELF } },
          errors: ['ACL_OFF', 'NO_LEADER', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      const p = req.principal;
      if (p === null)
        return sendError(
          reply,
          'ACL_OFF',
          'this node checks no tokens (started without --acl or --token-file), so a request carries none to describe',
        );
      const self = describeSelf(ctx.node.registry, p);
      // Identified a moment ago; a revoke applied since (the hook may have awaited a read barrier) makes it unknown now.
      if (self === null) return sendError(reply, 'UNAUTHENTICATED', 'the bearer token is not valid');
      return self;
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
          description:
            'Replicated: a node refuses the token as soon as it has applied the revoke. A retry with the same `x-rollcall-client-id` and `x-rollcall-seq` answers as the first did.',
          responses: {
            200: {
              description: 'Revoked.',
              schema: { type: 'object', properties: { revision: { type: 'integer' }, id: { type: 'string' } } },
            },
          },
          errors: ['INVALID_ARGUMENT', 'TOKEN_NOT_FOUND', 'STALE_REQUEST', ...WRITE_ERRORS],
        },
      },
    },
    async (req, reply) => {
      if (!aclOn) return off(reply);
      const command: RevokeToken = { type: 'revokeToken', id: req.params.id };
      return ctx.write(req, reply, command, (ok) => ({ revision: ok.revision, id: req.params.id }));
    },
  );
}

/** The index of the first token whose id sorts after `id` (tokens sorted by id). */
function firstAfter(tokens: readonly AclToken[], id: string): number {
  let lo = 0;
  let hi = tokens.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (tokens[mid]!.id <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
