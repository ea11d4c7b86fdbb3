/** DELETE /v1/namespaces/{ns}/services/{svc}/instances/{id}: deregister; a missing instance answers `deleted: false`. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { instanceParams } from '../../schemas.js';
import { CLIENT_HEADERS } from '../headers.js';
import { WRITE_ERRORS } from './replies.js';

export function deregisterInstanceRoute(app: FastifyInstance, ctx: ServerContext): void {
  app.withTypeProvider<TypeBoxTypeProvider>().delete(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    {
      schema: { params: instanceParams },
      // No per-request child logger (pino's child() with its redaction, on every write), as on
      // the read route: requests are not logged one by one (app.ts), the handler and its
      // helpers log nothing, and the audit and error lines go to the app's logger.
      childLoggerFactory: (logger) => logger,
      config: {
        access: 'register',
        namespace: 'params',
        docs: {
          operationId: 'deregister',
          tag: 'instances',
          summary: 'Deregister an instance',
          description: 'Deleting a missing instance succeeds with `deleted: false`.',
          headers: CLIENT_HEADERS,
          responses: {
            200: {
              description: 'Deleted.',
              schema: { type: 'object', properties: { revision: { type: 'integer' }, deleted: { type: 'boolean' } } },
            },
          },
          errors: ['INVALID_ARGUMENT', ...WRITE_ERRORS],
        },
      },
    },
    async (req, reply) => {
      const { ns, svc, id } = req.params;
      return ctx.write(req, reply, { type: 'unregister', namespace: ns, service: svc, id }, (r) => ({
        revision: r.revision,
        deleted: r.changed,
      }));
    },
  );
}
