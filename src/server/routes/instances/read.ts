/** GET /v1/namespaces/{ns}/services/{svc}/instances/{id}: one instance, disabled ones too. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { sendError } from '../../errors.js';
import { instanceJson } from '../../listing/writers.js';
import { instanceGetQuery, instanceParams } from '../../schemas.js';
import { ETAG, INSTANCE_REPLY, READ_ERRORS } from './replies.js';

/** The content type fastify gives the JSON it serializes itself. */
const JSON_TYPE = 'application/json; charset=utf-8';

export function getInstanceRoute(app: FastifyInstance, ctx: ServerContext): void {
  const { node } = ctx;
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    {
      schema: { params: instanceParams, querystring: instanceGetQuery },
      // No per-request child logger (pino's child() with its redaction, on every read):
      // requests are not logged one by one (app.ts), and this handler logs nothing.
      childLoggerFactory: (logger) => logger,
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
      // The same bytes as `instanceReply` would serialize, built from the instance's JSON
      // encoded once (instances are immutable: a change replaces the object), so a read of
      // an unchanged instance skips present() and JSON.stringify (issue 21).
      reply.header('etag', `"${instance.version}"`);
      reply.header('content-type', JSON_TYPE);
      return reply.send(`{"revision":${revision},"instance":${instanceJson(instance)}}`);
    },
  );
}
