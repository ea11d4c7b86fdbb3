/** GET /v1/watch: Server-Sent Events of registry changes, from this node's applied state. */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { sendError } from '../errors.js';
import { watchQuery } from '../schemas.js';
import { ChunkedResponseSink } from '../watch/chunked-sink.js';

const DESCRIPTION = `Server-Sent Events (\`text/event-stream\`). Each change is an event with \`id:\` = its revision and \`data:\` = a WatchEvent, in revision order.
Control events: \`progress\` (\`{"revision"}\`, on idle streams every 5-10 s, with \`id:\` so a reconnect resumes after it),
\`compacted\` (\`{"revision", "compactRevision"}\`: the resume point is gone from this node's history; the stream ends; list again and watch from the listed revision + 1),
\`overflow\` (\`{"revision", "fromRevision"}\`: the client read too slowly; the stream ends; resume with \`fromRevision\`).
Resume with \`fromRevision=N\` (every change with revision >= N) or the \`Last-Event-ID\` header (every change after it; wins over fromRevision).`;

export function watchRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/watch',
    {
      schema: { querystring: watchQuery },
      config: {
        access: 'read',
        namespace: 'query',
        docs: {
          operationId: 'watch',
          tag: 'watch',
          summary: 'Watch changes (Server-Sent Events)',
          description: DESCRIPTION,
          headers: [
            {
              name: 'last-event-id',
              description: 'Resume after this revision (what an EventSource sends on reconnect).',
              schema: { type: 'string', pattern: '^[0-9]{1,15}$' },
            },
          ],
          responses: {
            200: {
              description: 'An event stream.',
              contentType: 'text/event-stream',
              schema: { $ref: '#/components/schemas/WatchEvent' },
            },
          },
          errors: ['INVALID_ARGUMENT', 'SHUTTING_DOWN'],
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      if (q.service !== undefined && q.namespace === undefined)
        return sendError(reply, 'INVALID_ARGUMENT', 'service: a service filter needs namespace', { field: 'service' });
      if (q.cluster !== undefined && q.service === undefined)
        return sendError(reply, 'INVALID_ARGUMENT', 'cluster: a cluster filter needs service', { field: 'cluster' });
      if (ctx.closing) return sendError(reply, 'SHUTTING_DOWN', 'this node is stopping; watch another node');
      let after: number;
      const last = req.headers['last-event-id'];
      if (last !== undefined) {
        if (typeof last !== 'string')
          return sendError(reply, 'INVALID_ARGUMENT', 'last-event-id: give it once', { field: 'last-event-id' });
        if (!/^[0-9]{1,15}$/.test(last))
          return sendError(reply, 'INVALID_ARGUMENT', 'last-event-id: must be a revision (an integer)', {
            field: 'last-event-id',
          });
        after = Number(last);
      } else {
        after = q.fromRevision !== undefined ? q.fromRevision - 1 : ctx.node.registry.revision;
      }
      // HEAD (fastify answers it with this handler): the headers of a stream, and no stream.
      if (req.method === 'HEAD')
        return reply.code(200).header('content-type', 'text/event-stream; charset=utf-8').send();
      const filter: { namespace?: string; service?: string; cluster?: string } = {};
      if (q.namespace !== undefined) filter.namespace = q.namespace;
      if (q.service !== undefined) filter.service = q.service;
      if (q.cluster !== undefined) filter.cluster = q.cluster;

      reply.hijack();
      const res = reply.raw;
      const headers: Record<string, string> = {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
        // A stream is not followed by another request: free the socket as soon as it ends.
        connection: 'close',
        'x-rollcall-node': ctx.node.id,
        'x-rollcall-revision': String(ctx.node.registry.revision),
      };
      if (ctx.node.leader) headers['x-rollcall-leader'] = ctx.node.leader;
      res.writeHead(200, headers);
      // The reconnection delay an EventSource uses; also sends the headers now.
      res.write('retry: 2000\n\n');
      ctx.hub.open(new ChunkedResponseSink(res), filter, after);
      return reply;
    },
  );
}
