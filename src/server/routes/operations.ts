/** Probes, metrics and the API description. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { errorBody } from '../errors.js';
import { PROMETHEUS_CONTENT_TYPE } from '../metrics.js';
import type { OpenApiBuilder } from '../openapi.js';

export function operationRoutes(app: FastifyInstance, ctx: ServerContext, openapi: OpenApiBuilder): void {
  const { node } = ctx;

  app.get(
    '/healthz',
    {
      config: {
        access: 'public',
        docs: {
          operationId: 'healthz',
          tag: 'operations',
          summary: 'Liveness: the process is up and serving HTTP',
          responses: { 200: { description: 'Up.', schema: { type: 'object', properties: { ok: { type: 'boolean' }, node: { type: 'string' } } } } },
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
          summary: 'Readiness: a leader is known and this node has applied everything the leader had committed when asked',
          description: 'Confirms with the leader (one ReadIndex round, shared with reads), so it may take up to the ready wait (0.8 s by default, under the 1-s timeout of a Kubernetes probe) on a node that is catching up. Answers 503 when not: the catalogue error `NOT_READY` with the same fields beside it, `ready: false`; `reasons` says why.',
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
      let st = node.status();
      const lag = Math.max(0, st.commitIndex - st.appliedIndex);
      const reasons: string[] = [];
      if (ctx.closing) reasons.push('this node is shutting down');
      if (st.leader === null) reasons.push('no leader is known (election in progress, or this node is cut off from a quorum)');
      if (lag > ctx.limits.readyMaxLag) reasons.push(`applied index ${st.appliedIndex} is ${lag} entries behind the commit index ${st.commitIndex} (at most ${ctx.limits.readyMaxLag})`);
      if (!st.conf.voters.includes(node.id) && !st.conf.learners.includes(node.id)) reasons.push('this node is not (yet) a member of the cluster');
      // The commit index a node knows comes from the leader's messages, which carry no more
      // than what the node already holds: a node just restarted after missing many writes
      // sees no lag until the leader sends it a snapshot. Only a read barrier (a ReadIndex
      // round) learns the leader's own commit index and waits until this node applied it.
      if (reasons.length === 0) {
        try {
          await node.readBarrier(ctx.limits.readyWaitMs);
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          reasons.push(`not caught up with the leader's commit index within ${ctx.limits.readyWaitMs} ms (${why})`);
        }
        st = node.status();
        if (ctx.closing) reasons.push('this node is shutting down');
      }
      const ready = reasons.length === 0;
      // Not ready: the catalogue shape like every error, with the probe's fields beside it.
      const error = ready ? {} : errorBody('NOT_READY', `not ready: ${reasons.join('; ')}`);
      return reply.code(ready ? 200 : 503).send({
        ...error,
        ready,
        node: node.id,
        leader: st.leader,
        role: st.role,
        term: st.term,
        commitIndex: st.commitIndex,
        appliedIndex: st.appliedIndex,
        lag: Math.max(0, st.commitIndex - st.appliedIndex),
        reasons,
      });
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
          responses: { 200: { description: 'Text exposition format 0.0.4.', contentType: PROMETHEUS_CONTENT_TYPE, schema: { type: 'string' } } },
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
