/** Probes, metrics and the API description. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { PROMETHEUS_CONTENT_TYPE } from '../metrics.js';
import type { OpenApiBuilder } from '../openapi.js';
import { evaluateReadiness } from '../probes/readiness.js';

export function operationRoutes(app: FastifyInstance, ctx: ServerContext, openapi: OpenApiBuilder): void {
  const { node } = ctx;
  // The probe listener (--probe-listen) publishes the same check from a timer.
  app.decorate('readiness', () => evaluateReadiness({ node, limits: ctx.limits, closing: () => ctx.closing }));

  app.get(
    '/healthz',
    {
      config: {
        access: 'public',
        docs: {
          operationId: 'healthz',
          tag: 'operations',
          summary: 'Liveness: the process is up and serving HTTP',
          responses: {
            200: {
              description: 'Up.',
              schema: { type: 'object', properties: { ok: { type: 'boolean' }, node: { type: 'string' } } },
            },
          },
          errors: [],
        },
      },
    },
    async () => ({ ok: true, node: node.id }),
  );

  app.get(
    '/readyz',
    {
      config: {
        access: 'public',
        docs: {
          operationId: 'readyz',
          tag: 'operations',
          summary:
            'Readiness: a leader is known and this node has applied everything the leader had committed when asked',
          description:
            'Confirms with the leader (one ReadIndex round, shared with reads), so it may take up to the ready wait (0.8 s by default, under the 1-s timeout of a Kubernetes probe) on a node that is catching up. Answers 503 when not: the catalogue error `NOT_READY` with the same fields beside it, `ready: false`; `reasons` says why.',
          responses: {
            200: {
              description: 'Ready.',
              schema: {
                type: 'object',
                properties: {
                  ready: { type: 'boolean' },
                  node: { type: 'string' },
                  leader: { type: ['string', 'null'] },
                  role: { type: 'string' },
                  term: { type: 'integer' },
                  commitIndex: { type: 'integer' },
                  appliedIndex: { type: 'integer' },
                  lag: { type: 'integer' },
                  reasons: { type: 'array', items: { type: 'string' } },
                },
              },
            },
          },
          errors: ['NOT_READY'],
        },
      },
    },
    async (_req, reply) => {
      const answer = await app.readiness();
      return reply.code(answer.status).send(answer.body);
    },
  );

  app.get(
    '/metrics',
    {
      config: {
        access: 'read',
        docs: {
          operationId: 'metrics',
          tag: 'operations',
          summary: 'Prometheus metrics',
          responses: {
            200: {
              description: 'Text exposition format 0.0.4.',
              contentType: PROMETHEUS_CONTENT_TYPE,
              schema: { type: 'string' },
            },
          },
          errors: [],
        },
      },
    },
    async (_req, reply) => reply.type(PROMETHEUS_CONTENT_TYPE).send(ctx.metrics.render()),
  );

  app.get(
    '/openapi.json',
    {
      config: {
        access: 'public',
        docs: {
          operationId: 'openapi',
          tag: 'operations',
          summary: 'This API as an OpenAPI 3.1 document',
          responses: { 200: { description: 'The document.', schema: { type: 'object' } } },
          errors: [],
        },
      },
    },
    async () => openapi.document(),
  );
}
