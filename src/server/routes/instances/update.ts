/**
 * PATCH /v1/namespaces/{ns}/services/{svc}/instances/{id}: the admin compare-and-set update
 * of weight, metadata, tags or enabled, against the version named in `If-Match`. A new
 * `metadata.environment` is judged against the label by the state machine when applied.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { ClientCommand } from '../../../registry/index.js';
import { accessPrecheck } from '../../access-rules.js';
import { renameField, type ServerContext } from '../../context.js';
import { sendCommandError, sendError } from '../../errors.js';
import { instanceParams, patchBody } from '../../schemas.js';
import { CLIENT_HEADERS, parseIfMatch } from '../headers.js';
import { ETAG, INSTANCE_REPLY, WRITE_ERRORS, writeReply } from './replies.js';

export function updateInstanceRoute(app: FastifyInstance, ctx: ServerContext): void {
  const { node } = ctx;
  app.withTypeProvider<TypeBoxTypeProvider>().patch(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    {
      schema: { params: instanceParams, body: patchBody },
      // No per-request child logger (pino's child() with its redaction, on every write), as on
      // the read route: requests are not logged one by one (app.ts), the handler and its
      // helpers log nothing, and the audit and error lines go to the app's logger.
      childLoggerFactory: (logger) => logger,
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
          headers: [
            { name: 'if-match', required: true, description: 'The version the change is based on: `3` or `"3"`.' },
            ...CLIENT_HEADERS,
          ],
          responses: { 200: { description: 'Updated (or unchanged).', schema: INSTANCE_REPLY, headers: ETAG } },
          errors: [
            'INVALID_ARGUMENT',
            'INVALID_JSON',
            'BODY_TOO_LARGE',
            'UNSUPPORTED_MEDIA_TYPE',
            'INSTANCE_NOT_FOUND',
            'VERSION_MISMATCH',
            'PRECONDITION_REQUIRED',
            'ENVIRONMENT_MISMATCH',
            'ACCESS_RULES_INVALID',
            ...WRITE_ERRORS,
          ],
        },
      },
    },
    async (req, reply) => {
      const { ns, svc, id } = req.params;
      const header = req.headers['if-match'];
      if (header === undefined) {
        return sendError(
          reply,
          'PRECONDITION_REQUIRED',
          'PATCH needs If-Match: <version> (read the instance for its version)',
          { field: 'if-match' },
        );
      }
      const expectedVersion = parseIfMatch(header);
      if (expectedVersion === null)
        return sendError(reply, 'INVALID_ARGUMENT', 'if-match: must be one instance version, like 3 or "3"', {
          field: 'if-match',
        });
      const command: ClientCommand = {
        type: 'update',
        namespace: ns,
        service: svc,
        id,
        expectedVersion,
        patch: req.body,
      };
      const fields = { expectedVersion: 'if-match', patch: '' };
      // A new metadata.environment is judged against the label by the state machine (ENVIRONMENT_MISMATCH).
      const since = performance.now();
      const refused = await accessPrecheck(ctx, req, command);
      if (refused !== null) return sendCommandError(reply, renameField(refused, fields));
      return ctx.write(
        req,
        reply,
        command,
        (r, at) => writeReply(reply, r, at, node.registry.getInstance(ns, svc, id)),
        { fields, since },
      );
    },
  );
}
