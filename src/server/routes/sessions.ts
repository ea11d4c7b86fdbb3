/**
 * Sessions: open (with a TTL), keep alive (any node; the leader keeps the deadline), close.
 * One id schema (SESSION_ID) for the three, so an id one accepts the others accept; a
 * namespace-limited token reaches only the sessions of its namespaces (session-scope.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { parseKeepaliveBody } from '../../health/index.js';
import type { ClientCommand } from '../../registry/index.js';
import type { ServerContext } from '../context.js';
import { sendError, sendNodeError } from '../errors.js';
import { SESSION_ID, sessionBody, sessionHeaders, sessionParams } from '../schemas.js';
import { checkSessionScope } from '../session-scope.js';
import { CLIENT_HEADERS } from './headers.js';

export function sessionRoutes(untyped: FastifyInstance, ctx: ServerContext): void {
  const app = untyped.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/v1/sessions',
    {
      schema: { body: sessionBody, headers: sessionHeaders },
      // No per-request child logger (pino's child() with its redaction, on every write), as on
      // the read route: requests are not logged one by one (app.ts), the handler and its
      // helpers log nothing, and the audit and error lines go to the app's logger.
      childLoggerFactory: (logger) => logger,
      config: {
        access: 'register',
        docs: {
          operationId: 'openSession',
          tag: 'sessions',
          summary: 'Open a session',
          description:
            'Ephemeral instances registered with this session id live while keepalives arrive within `ttlMs`.',
          headers: [
            ...CLIENT_HEADERS,
            {
              name: 'x-rollcall-session-id',
              description: 'Choose the session id (default: a random one).',
              schema: SESSION_ID,
            },
          ],
          responses: {
            201: {
              description: 'Opened.',
              schema: { type: 'object', properties: { id: { type: 'string' }, ttlMs: { type: 'integer' } } },
            },
          },
          errors: [
            'INVALID_ARGUMENT',
            'INVALID_JSON',
            'SESSION_EXISTS',
            'STALE_REQUEST',
            'BODY_TOO_LARGE',
            'UNSUPPORTED_MEDIA_TYPE',
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
      const sessionId = req.headers['x-rollcall-session-id'] ?? defaultSessionId(req.headers);
      const command: ClientCommand = { type: 'openSession', sessionId, ttlMs: req.body.ttlMs, now: Date.now() };
      return ctx.write(req, reply, command, () => reply.code(201).send({ id: sessionId, ttlMs: req.body.ttlMs }), {
        fields: { sessionId: 'x-rollcall-session-id' },
      });
    },
  );

  app.put(
    '/v1/sessions/:id/keepalive',
    {
      schema: { params: sessionParams },
      childLoggerFactory: (logger) => logger, // no per-request child logger: see POST /v1/sessions
      config: {
        access: 'register',
        docs: {
          operationId: 'keepalive',
          tag: 'sessions',
          summary: 'Keep a session alive',
          description:
            'Any node takes it and forwards it to the leader. `expiring: true` means expiry protection holds the session (its instances are `suspect`). ' +
            'Optional body `{"report": {"successRatio", "p99Ms", "cpu", "memory", "disk"}}`: how the provider is doing, for every instance of the session; the leader turns it into health (docs/health.md).',
          responses: {
            200: {
              description: 'Renewed.',
              schema: {
                type: 'object',
                properties: { id: { type: 'string' }, ok: { type: 'boolean' }, expiring: { type: 'boolean' } },
              },
            },
          },
          errors: [
            'INVALID_ARGUMENT',
            'INVALID_JSON',
            'BODY_TOO_LARGE',
            'UNSUPPORTED_MEDIA_TYPE',
            'SESSION_NOT_FOUND',
            'NO_LEADER',
            'SHUTTING_DOWN',
            'TIMEOUT',
          ],
        },
      },
    },
    async (req, reply) => {
      const report = parseKeepaliveBody(req.body);
      if (!report.ok) return sendError(reply, 'INVALID_ARGUMENT', report.message, { field: report.field });
      if (!(await checkSessionScope(ctx, req, reply, req.params.id, false))) return reply;
      try {
        const outcome = await ctx.node.keepalive(req.params.id, ctx.limits.timeoutMs, report.value);
        if (outcome === 'unknown')
          return sendError(reply, 'SESSION_NOT_FOUND', `session ${req.params.id} does not exist (expired or closed)`);
        return { id: req.params.id, ok: true, expiring: outcome === 'expiring' };
      } catch (err) {
        return sendNodeError(reply, err);
      }
    },
  );

  app.delete(
    '/v1/sessions/:id',
    {
      schema: { params: sessionParams },
      childLoggerFactory: (logger) => logger, // no per-request child logger: see POST /v1/sessions
      config: {
        access: 'register',
        docs: {
          operationId: 'closeSession',
          tag: 'sessions',
          summary: 'Close a session',
          description: 'Deletes the session and its ephemeral instances (one delete event each).',
          headers: CLIENT_HEADERS,
          responses: {
            200: {
              description: 'Closed.',
              schema: {
                type: 'object',
                properties: {
                  revision: { type: 'integer' },
                  deleted: { type: 'integer', description: 'Instances removed.' },
                },
              },
            },
          },
          errors: [
            'INVALID_ARGUMENT',
            'SESSION_NOT_FOUND',
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
      // After a read barrier: a close must not delete an instance of another namespace.
      if (!(await checkSessionScope(ctx, req, reply, req.params.id, true))) return reply;
      return ctx.write(
        req,
        reply,
        { type: 'closeSession', sessionId: req.params.id },
        (r) => ({ revision: r.revision, deleted: r.count ?? 0 }),
        { fields: { sessionId: 'id' } },
      );
    },
  );
}

/**
 * A session id the client did not choose. A retry of the same request (same client id and
 * sequence) must name the same session, or the deduplicated answer would point at a
 * session that does not exist: derive the id from the request identity when there is one.
 */
function defaultSessionId(headers: Record<string, string | string[] | undefined>): string {
  const client = headers['x-rollcall-client-id'];
  const seq = headers['x-rollcall-seq'];
  if (typeof client === 'string' && typeof seq === 'string') {
    return createHash('sha256').update(`${client}\u0000${seq}`).digest('hex').slice(0, 24);
  }
  return randomBytes(12).toString('hex');
}
