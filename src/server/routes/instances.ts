/**
 * Instances: register (upsert), deregister, list (with blocking queries), read one, and the
 * admin compare-and-set PATCH. Access rules: the state machine judges a register or update
 * when it is applied, against the rules in force at that log position (src/registry/access.ts),
 * and its refusal comes back as the write's result; accessPrecheck only answers a refusal it
 * has confirmed after a read barrier, without a log entry.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ClientCommand, CommandResult, Instance } from '../../registry/index.js';
import { accessPrecheck } from '../access-rules.js';
import type { ReadQuery, ServerContext } from '../context.js';
import { renameField } from '../context.js';
import { sendCommandError, sendError } from '../errors.js';
import { listNamespaceInstances, listServiceInstances, type NamespaceListQuery, type ServiceListQuery } from '../listing/instance-lists.js';
import { openLister } from '../listing/serve.js';
import { present } from '../present.js';
import { checkSessionScope } from '../session-scope.js';
import { instanceGetQuery, instanceParams, namespaceListQuery, namespaceParams, patchBody, readQuery, registerBody, serviceParams } from '../schemas.js';
import { CLIENT_HEADERS } from './sessions.js';

type ServiceParams = { ns: string; svc: string };
type InstanceParams = ServiceParams & { id: string };
type PatchBody = { weight?: number; metadata?: Record<string, string>; tags?: string[]; enabled?: boolean };

const WRITE_ERRORS = ['NO_LEADER', 'PROPOSAL_DROPPED', 'TRANSFER_IN_PROGRESS', 'SHUTTING_DOWN', 'TIMEOUT', 'STALE_REQUEST', 'INVALID_COMMAND'] as const;
const READ_ERRORS = ['INVALID_ARGUMENT', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT'] as const;
const PAGE_ERRORS = ['LIMIT_EXCEEDED', 'COMPACTED'] as const;
const INSTANCES = { type: 'array', items: { $ref: '#/components/schemas/Instance' } } as const;
const CONTINUE = { type: 'string', description: 'Present when more items are left: pass it as `continue` for the next page.' } as const;
const LIST_REPLY = { type: 'object', properties: { revision: { type: 'integer' }, serviceRevision: { type: 'integer' }, instances: INSTANCES, continue: CONTINUE } } as const;
const NAMESPACE_LIST_REPLY = { type: 'object', properties: { revision: { type: 'integer' }, instances: INSTANCES, continue: CONTINUE } } as const;
const INSTANCE_REPLY = { $ref: '#/components/schemas/InstanceReply' };
const ETAG = { etag: 'The instance version, quoted: use it as If-Match.' };

export function instanceRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { node } = ctx;
  const lister = openLister(app, node.registry, { waitMs: ctx.limits.minRevisionTimeoutMs, maxItems: ctx.limits.listMaxItems });

  app.put<{ Params: InstanceParams; Body: Record<string, unknown> }>(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    {
      schema: { params: instanceParams, body: registerBody },
      config: {
        access: 'register',
        namespace: 'params',
        docs: {
          operationId: 'register',
          tag: 'instances',
          summary: 'Register an instance (upsert)',
          description:
            'With `sessionId` the instance is ephemeral (removed when the session ends), without it persistent. Optional fields left out keep their value on an existing instance. ' +
            'Refused by access rules (403 ACCESS_DENIED) or when `metadata.environment` differs from the registry environment label (409 ENVIRONMENT_MISMATCH), ' +
            'as judged by the rules in force when the write is applied.',
          headers: CLIENT_HEADERS,
          responses: { 200: { description: 'Registered (or unchanged).', schema: INSTANCE_REPLY, headers: ETAG } },
          errors: ['INVALID_ARGUMENT', 'INVALID_JSON', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'SESSION_NOT_FOUND', 'KIND_MISMATCH', 'ACCESS_DENIED', 'ENVIRONMENT_MISMATCH', 'ACCESS_RULES_INVALID', ...WRITE_ERRORS],
        },
      },
    },
    async (req, reply) => {
      const { ns, svc, id } = req.params;
      // Binding to a session is acting on it: the session must be within the token's namespaces.
      const sessionId = req.body['sessionId'];
      if (typeof sessionId === 'string' && !(await checkSessionScope(ctx, req, reply, sessionId, false))) return reply;
      const command = { type: 'register', namespace: ns, service: svc, id, ...req.body } as ClientCommand;
      // ACCESS_DENIED / ENVIRONMENT_MISMATCH / ACCESS_RULES_INVALID: the state machine's verdict (fast path or log).
      const since = performance.now();
      const refused = await accessPrecheck(ctx, req, command);
      if (refused !== null) return sendCommandError(reply, refused);
      return ctx.write(req, reply, command, (r, at) => writeReply(reply, r, at, node.registry.getInstance(ns, svc, id)), { since });
    },
  );

  app.patch<{ Params: InstanceParams; Body: PatchBody }>(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    {
      schema: { params: instanceParams, body: patchBody },
      config: {
        access: 'admin',
        namespace: 'params',
        docs: {
          operationId: 'updateInstance',
          tag: 'admin',
          summary: 'Update weight, metadata, tags or enabled (compare-and-set)',
          description:
            'Each field given replaces the current value (metadata and tags whole). `If-Match` must name the current version (from the instance, or its ETag); ' +
            'a disabled instance stays registered but is left out of lists unless `includeDisabled=true`.',
          headers: [{ name: 'if-match', required: true, description: 'The version the change is based on: `3` or `"3"`.' }, ...CLIENT_HEADERS],
          responses: { 200: { description: 'Updated (or unchanged).', schema: INSTANCE_REPLY, headers: ETAG } },
          errors: ['INVALID_ARGUMENT', 'INVALID_JSON', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'INSTANCE_NOT_FOUND', 'VERSION_MISMATCH', 'PRECONDITION_REQUIRED', 'ENVIRONMENT_MISMATCH', 'ACCESS_RULES_INVALID', ...WRITE_ERRORS],
        },
      },
    },
    async (req, reply) => {
      const { ns, svc, id } = req.params;
      const header = req.headers['if-match'];
      if (header === undefined) {
        return sendError(reply, 'PRECONDITION_REQUIRED', 'PATCH needs If-Match: <version> (read the instance for its version)', { field: 'if-match' });
      }
      const expectedVersion = parseIfMatch(header);
      if (expectedVersion === null) return sendError(reply, 'INVALID_ARGUMENT', 'if-match: must be one instance version, like 3 or "3"', { field: 'if-match' });
      const command: ClientCommand = { type: 'update', namespace: ns, service: svc, id, expectedVersion, patch: req.body };
      const fields = { expectedVersion: 'if-match', patch: '' };
      // A new metadata.environment is judged against the label by the state machine (ENVIRONMENT_MISMATCH).
      const since = performance.now();
      const refused = await accessPrecheck(ctx, req, command);
      if (refused !== null) return sendCommandError(reply, renameField(refused, fields));
      return ctx.write(req, reply, command, (r, at) => writeReply(reply, r, at, node.registry.getInstance(ns, svc, id)), { fields, since });
    },
  );

  app.delete<{ Params: InstanceParams }>(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    {
      schema: { params: instanceParams },
      config: {
        access: 'register',
        namespace: 'params',
        docs: {
          operationId: 'deregister',
          tag: 'instances',
          summary: 'Deregister an instance',
          description: 'Deleting a missing instance succeeds with `deleted: false`.',
          headers: CLIENT_HEADERS,
          responses: { 200: { description: 'Deleted.', schema: { type: 'object', properties: { revision: { type: 'integer' }, deleted: { type: 'boolean' } } } } },
          errors: ['INVALID_ARGUMENT', ...WRITE_ERRORS],
        },
      },
    },
    async (req, reply) => {
      const { ns, svc, id } = req.params;
      return ctx.write(req, reply, { type: 'unregister', namespace: ns, service: svc, id }, (r) => ({ revision: r.revision, deleted: r.changed }));
    },
  );

  app.get<{ Params: ServiceParams; Querystring: ServiceListQuery }>(
    '/v1/namespaces/:ns/services/:svc/instances',
    {
      schema: { params: serviceParams, querystring: readQuery },
      config: {
        access: 'read',
        namespace: 'params',
        docs: {
          operationId: 'listInstances',
          tag: 'instances',
          summary: 'List a service\'s instances (optionally a blocking query), in pages',
          description:
            'Sorted by cluster, then id; disabled instances only with `includeDisabled=true`; `health=healthy` or `health=usable` leaves out the rest. ' +
            'Blocking query: with `index` equal to the service\'s current index (`x-rollcall-index`), the answer waits until a change touches this service, or until `wait` ends (then it is unchanged). ' +
            'Any other `index` (older, or newer as after a restart) is answered at once. ' +
            'Pages: `limit` items, then `continue` for the next page, every page read at the first page\'s revision. Without `limit`, a list of more than 10,000 instances is refused (LIMIT_EXCEEDED).',
          responses: {
            200: {
              description: 'The instances.',
              schema: LIST_REPLY,
              headers: { 'x-rollcall-index': 'The service\'s revision: pass it as `index` to block until it changes.' },
            },
          },
          errors: [...READ_ERRORS, ...PAGE_ERRORS],
        },
      },
    },
    async (req, reply) => listServiceInstances(ctx, lister, req.params.ns, req.params.svc, req.query, reply),
  );

  app.get<{ Params: { ns: string }; Querystring: NamespaceListQuery }>(
    '/v1/namespaces/:ns/instances',
    {
      schema: { params: namespaceParams, querystring: namespaceListQuery },
      config: {
        access: 'read',
        namespace: 'params',
        docs: {
          operationId: 'listNamespaceInstances',
          tag: 'instances',
          summary: 'List every instance of a namespace, in pages',
          description:
            'Sorted by service, cluster, then id, all at one `revision`: a namespace-wide watch that was told `compacted` re-lists here and resumes from `revision + 1`. ' +
            'Disabled instances only with `includeDisabled=true`; `health` filters as on a service list; `limit` and `continue` page as on a service list.',
          responses: { 200: { description: 'The instances.', schema: NAMESPACE_LIST_REPLY } },
          errors: [...READ_ERRORS, ...PAGE_ERRORS],
        },
      },
    },
    async (req, reply) => listNamespaceInstances(ctx, lister, req.params.ns, req.query, reply),
  );

  app.get<{ Params: InstanceParams; Querystring: ReadQuery }>(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    {
      schema: { params: instanceParams, querystring: instanceGetQuery },
      config: {
        access: 'read',
        namespace: 'params',
        docs: {
          operationId: 'getInstance',
          tag: 'instances',
          summary: 'Read one instance',
          description: 'Disabled instances are returned too (with `enabled: false`).',
          responses: { 200: { description: 'The instance.', schema: INSTANCE_REPLY, headers: ETAG } },
          errors: [...READ_ERRORS, 'INSTANCE_NOT_FOUND'],
        },
      },
    },
    async (req, reply) => {
      if (!(await ctx.readPoint(req.query, reply))) return reply;
      const { ns, svc, id } = req.params;
      const revision = node.registry.revision;
      const instance = node.registry.getInstance(ns, svc, id);
      reply.header('x-rollcall-revision', String(revision));
      if (!instance) return sendError(reply, 'INSTANCE_NOT_FOUND', `no instance ${id} in ${ns}/${svc}`);
      return instanceReply(reply, revision, instance);
    },
  );
}

/**
 * A write's answer: the instance exactly as this write left it (captured at apply time).
 * A retried write answered from the deduplication table after the instance changed again
 * cannot show that state: it answers `instance: null` with `replayed: true` and the
 * version the write produced.
 */
function writeReply(reply: FastifyReply, r: CommandResult & { ok: true }, at: Instance | null | undefined, current: Instance | undefined): unknown {
  // Without a captured state, the current one is this write's only if the version says so.
  if (at === undefined && current !== undefined && current.version === r.version) return instanceReply(reply, r.revision, current);
  if (at === undefined) {
    if (r.version !== undefined) reply.header('etag', `"${r.version}"`);
    return { revision: r.revision, version: r.version ?? null, instance: null, replayed: true };
  }
  return instanceReply(reply, r.revision, at ?? undefined);
}

function instanceReply(reply: FastifyReply, revision: number, instance: Instance | undefined): unknown {
  if (instance) reply.header('etag', `"${instance.version}"`);
  return { revision, instance: instance ? present(instance) : null };
}

/** `3`, `"3"` or `W/"3"`; anything else (lists, `*`) is refused. */
export function parseIfMatch(header: string): number | null {
  const m = /^\s*(?:W\/)?"?([0-9]{1,15})"?\s*$/.exec(header);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/** `500ms`, `30s`, `5m` (the schema has checked the shape). */
export function parseWait(s: string): number {
  const m = /^([0-9]+)(ms|s|m)$/.exec(s);
  if (!m) return 0;
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}
