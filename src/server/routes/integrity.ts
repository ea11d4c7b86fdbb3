/**
 * POST /v1/cluster/check: the corruption check on demand (src/ops/corruption-check.ts), run
 * from this node across every member; `rollcall check` calls it. POST
 * /v1/cluster/check/disarm: clears members' corruption marks on a running cluster, as etcd's
 * `alarm disarm`; `rollcall check --disarm` calls it. And the read refusal of a node a check
 * found corrupt: 503 CORRUPT on every read route until it is replaced or disarmed.
 */
import type { FastifyInstance } from 'fastify';
import { NodeError } from '../../node/index.js';
import type { ServerContext } from '../context.js';
import { sendError, sendNodeError } from '../errors.js';
import type { NodeApi } from '../node-api.js';

/** No body at all (a bare `curl -X POST`) is null here: every member, as `{}` is. */
const DISARM_BODY = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    member: { type: 'string', minLength: 1, maxLength: 64, description: 'One member; absent: every member.' },
  },
} as const;

const MARK_SCHEMA = {
  type: ['object', 'null'],
  properties: { by: { type: 'string' }, detail: { type: 'string' }, at: { type: 'integer' } },
} as const;

export function integrityRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { node } = ctx;
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

  app.post<{ Body: { member?: string } | null }>(
    '/v1/cluster/check/disarm',
    {
      schema: { body: DISARM_BODY },
      config: {
        access: 'admin',
        docs: {
          operationId: 'disarmCorruption',
          tag: 'cluster',
          summary: "Clear members' corruption marks on a running cluster (admin)",
          description:
            "As etcd's `alarm disarm`: each member named (`member`, or every member when the body names none) clears the mark a corruption check left in its own database and serves reads again at once, whichever node takes the request (the mark is each member's own state, so this node asks the others over the peer connection). " +
            "For a member repaired in place, or a check judged wrong: a disarm vouches for nothing, and the next check (the leader's periodic one, or `POST /v1/cluster/check`) marks a member again if its hash still differs. " +
            'Per member: `disarmed` (it held a mark and cleared it), `mark` (the one cleared: who set it, when, what differed), `error` (`{code, message}` when it did not answer in time: its mark, if any, stays). Each member logs the disarm; `rollcall check --disarm` calls it.',
          responses: {
            200: {
              description: 'What each member did.',
              schema: {
                type: 'object',
                properties: {
                  by: { type: 'string' },
                  members: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        id: { type: 'string' },
                        disarmed: { type: 'boolean' },
                        mark: MARK_SCHEMA,
                        error: {
                          type: ['object', 'null'],
                          properties: { code: { type: 'string' }, message: { type: 'string' } },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
          errors: ['INVALID_ARGUMENT', 'INVALID_JSON', 'NOT_MEMBER', 'SHUTTING_DOWN'],
        },
      },
    },
    async (req, reply) => {
      const { disarmCorruption } = node;
      if (disarmCorruption === undefined)
        return sendError(reply, 'INTERNAL', 'this node cannot disarm corruption marks');
      const member = req.body?.member;
      try {
        return await disarmCorruption.call(node, member, ctx.limits.timeoutMs);
      } catch (err) {
        // The member the body named is not one: a 4xx names its field, as every other does.
        if (err instanceof NodeError && err.code === 'NOT_MEMBER')
          return sendError(reply, 'NOT_MEMBER', err.message, { field: 'member' });
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
  const { integrity } = node;
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
      `${node.id}'s state machine differs from the other members' (found by ${corrupt.by}): it serves no reads; read from another node, and replace this member or, once repaired, disarm the mark (docs/operations.md, Corruption checks)`,
      { detail: corrupt.detail },
    );
  });
}
