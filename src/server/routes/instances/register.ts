/**
 * PUT /v1/namespaces/{ns}/services/{svc}/instances/{id}: register an instance (upsert).
 * Access rules: the state machine judges a register when it is applied, against the rules
 * in force at that log position (src/registry/access.ts), and its refusal comes back as the
 * write's result; accessPrecheck only answers a refusal it has confirmed after a read
 * barrier, without a log entry.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { ClientCommand } from '../../../registry/index.js';
import { accessPrecheck } from '../../access-rules.js';
import type { ServerContext } from '../../context.js';
import { sendCommandError } from '../../errors.js';
import { instanceParams, registerBody } from '../../schemas.js';
import { checkSessionScope } from '../../session-scope.js';
import { CLIENT_HEADERS } from '../headers.js';
import { ETAG, INSTANCE_REPLY, WRITE_ERRORS, writeReply } from './replies.js';

export function registerInstanceRoute(app: FastifyInstance, ctx: ServerContext): void {
  const { node } = ctx;
  app.withTypeProvider<TypeBoxTypeProvider>().put(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    {
      schema: { params: instanceParams, body: registerBody },
      // No per-request child logger (pino's child() with its redaction, on every write), as on
      // the read route: requests are not logged one by one (app.ts), the handler and its
      // helpers log nothing, and the audit and error lines go to the app's logger.
      childLoggerFactory: (logger) => logger,
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
          errors: [
            'INVALID_ARGUMENT',
            'INVALID_JSON',
            'BODY_TOO_LARGE',
            'UNSUPPORTED_MEDIA_TYPE',
            'SESSION_NOT_FOUND',
            'KIND_MISMATCH',
            'ACCESS_DENIED',
            'ENVIRONMENT_MISMATCH',
            'ACCESS_RULES_INVALID',
            ...WRITE_ERRORS,
          ],
        },
      },
    },
    async (req, reply) => {
      const { ns, svc, id } = req.params;
      // Binding to a session is acting on it: the session must be within the token's namespaces.
      const { sessionId } = req.body;
      if (sessionId !== undefined && !(await checkSessionScope(ctx, req, reply, sessionId, false))) return reply;
      const command: ClientCommand = { type: 'register', namespace: ns, service: svc, id, ...req.body };
      // ACCESS_DENIED / ENVIRONMENT_MISMATCH / ACCESS_RULES_INVALID: the state machine's verdict (fast path or log).
      const since = performance.now();
      const refused = await accessPrecheck(ctx, req, command);
      if (refused !== null) return sendCommandError(reply, refused);
      return ctx.write(
        req,
        reply,
        command,
        (r, at) => writeReply(reply, r, at, node.registry.getInstance(ns, svc, id)),
        { since },
      );
    },
  );
}
