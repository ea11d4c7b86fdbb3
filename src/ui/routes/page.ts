/** GET /ui: the monitoring page, and its static files under /ui/assets/. Public: no data in them. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from '../../server/errors.js';
import type { Asset } from '../assets/index.js';
import { ASSETS, PAGE } from '../assets/index.js';

// The page runs only our own code and talks only to the node that served it.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export function pageRoutes(app: FastifyInstance): void {
  const serve = (req: FastifyRequest, reply: FastifyReply, a: Asset) => {
    reply.header('etag', a.etag).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff');
    if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.type(a.contentType).send(a.body);
  };

  app.get(
    '/ui',
    {
      config: {
        access: 'public',
        docs: {
          operationId: 'monitoringPage',
          tag: 'operations',
          summary: 'The monitoring page (HTML)',
          description:
            'Cluster, services and instances with health and reports, alerts and a live feed of changes; works on every node, followers included. See docs/ui.md.',
          responses: { 200: { description: 'The page.', contentType: 'text/html' } },
          errors: [],
        },
      },
    },
    async (req, reply) => {
      reply.header('content-security-policy', CSP).header('referrer-policy', 'no-referrer');
      return serve(req, reply, PAGE);
    },
  );

  app.get<{ Params: { name: string } }>(
    '/ui/assets/:name',
    {
      schema: {
        params: {
          type: 'object',
          required: ['name'],
          properties: { name: { type: 'string', maxLength: 64, description: 'A file of the page, e.g. app.js.' } },
        },
      },
      config: {
        access: 'public',
        docs: {
          operationId: 'monitoringAsset',
          tag: 'operations',
          summary: 'A static file of the monitoring page (script or style)',
          responses: { 200: { description: 'The file.', contentType: 'text/javascript' } },
          errors: ['ROUTE_NOT_FOUND'],
        },
      },
    },
    async (req, reply) => {
      const a = ASSETS.get(req.params.name);
      if (a === undefined) return sendError(reply, 'ROUTE_NOT_FOUND', `no file ${req.params.name} in /ui/assets`);
      return serve(req, reply, a);
    },
  );
}
