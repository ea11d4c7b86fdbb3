/**
 * POST /v1/cluster/check: the corruption check on demand (src/ops/corruption-check.ts), run
 * from this node across every member; `rollcall check` calls it. And the read refusal of a
 * node a check found corrupt: 503 CORRUPT on every read route until it is replaced.
 */
import type { FastifyInstance } from 'fastify';
import type { CheckReport } from '../../ops/corruption-check.js';
import type { ServerContext } from '../context.js';
import { sendError, sendNodeError } from '../errors.js';
import type { NodeApi } from '../node-api.js';

/** What the check needs of a node (absent from the in-memory test node). */
export interface CheckableNode {
  readonly checkCorruption?: (timeoutMs: number) => Promise<CheckReport>;
  readonly integrity?: {
    readonly selfCorruption: { readonly detail: string; readonly by: string; readonly at: number } | null;
  };
}

export function integrityRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const node = ctx.node as NodeApi & CheckableNode;
  app.post(
    '/v1/cluster/check',
    {
      config: {
        access: 'admin',
        docs: {
          operationId: 'checkCorruption',
          tag: 'cluster',
          summary: "Compare every member's state-machine hash now (admin)",
          description:
            'This node asks every member for a hash of its state machine once it has applied this node\'s applied index, and compares the hashes of members at the same index (docs/operations.md, "Corruption checks"). ' +
            'Per member: `verdict` (`ok`, `corrupt`, `skipped`: alone at its index this round, `unreachable`), `index`, `hash`, `keys`, `detail`. A corrupt member is told, raises the `node-corrupt` alert and refuses reads with 503 `CORRUPT`. `rollcall check` calls it.',
          responses: {
            200: {
              description: 'The report.',
              schema: {
                type: 'object',
                properties: {
                  by: { type: 'string' },
                  target: { type: 'integer' },
                  at: { type: 'integer' },
                  corrupt: { type: 'boolean' },
                  members: { type: 'array', items: { type: 'object' } },
                },
              },
            },
          },
          errors: ['SHUTTING_DOWN'],
        },
      },
    },
    async (_req, reply) => {
      if (node.checkCorruption === undefined)
        return sendError(reply, 'INTERNAL', 'this node cannot run the corruption check');
      try {
        return await node.checkCorruption.call(node, ctx.limits.timeoutMs);
      } catch (err) {
        return sendNodeError(reply, err);
      }
    },
  );
}

/** Routes a corrupt node still answers: its status, alerts, probes, metrics, the UI and the API description. */
const STILL_SERVED = [
  '/v1/cluster',
  '/v1/alerts',
  '/healthz',
  '/readyz',
  '/metrics',
  '/ui',
  '/openapi.json',
  '/v1/test/',
];

/**
 * Registers the hook that refuses reads on a node found corrupt. Writes go on (they are
 * forwarded to the leader or proposed through the log, never served from this node's state).
 */
export function refuseReadsWhenCorrupt(app: FastifyInstance, node: NodeApi): void {
  const checked = node as NodeApi & CheckableNode;
  if (checked.integrity === undefined) return;
  const integrity = checked.integrity;
  app.addHook('onRequest', (req, reply, done) => {
    const corrupt = integrity.selfCorruption;
    if (
      corrupt === null ||
      (req.method !== 'GET' && req.method !== 'HEAD') ||
      STILL_SERVED.some((p) => req.url.startsWith(p))
    )
      return done();
    sendError(
      reply,
      'CORRUPT',
      `${node.id}'s state machine differs from the other members' (found by ${corrupt.by}): it serves no reads; read from another node, and replace this member (docs/operations.md, Corruption checks)`,
      { detail: corrupt.detail },
    );
  });
}
