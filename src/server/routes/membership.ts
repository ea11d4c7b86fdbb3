/**
 * Cluster membership: add a member (as a learner, promoted to voter once caught up),
 * remove a member, transfer leadership. Any node takes them; followers forward to the
 * leader. Admin only.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { sendError, sendNodeError } from '../errors.js';
import { peerAddressProblem } from '../peer-address.js';

const memberBody = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' }),
    // The shape only: peerAddressProblem judges the host and port.
    peerAddress: Type.String({ minLength: 3, maxLength: 300, pattern: '^.+:[0-9]{1,5}$' }),
  },
  { additionalProperties: false },
);

const memberParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

const transferTarget = Type.Object(
  { to: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) },
  { additionalProperties: false },
);
/**
 * `{"to"}`, `{}`, `null` or no body at all: the object schema with `"type": ["object",
 * "null"]`, as it has always been described (a TypeBox union would become `anyOf`).
 */
const transferBody = Type.Unsafe<Static<typeof transferTarget> | null>({ ...transferTarget, type: ['object', 'null'] });

const CLUSTER_ERRORS = [
  'INVALID_ARGUMENT',
  'INVALID_JSON',
  'CONF_CHANGE_INVALID',
  'CONF_CHANGE_PENDING',
  'NOT_MEMBER',
  'NO_LEADER',
  'TRANSFER_IN_PROGRESS',
  'SHUTTING_DOWN',
  'TIMEOUT',
] as const;

export function membershipRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { node } = ctx;
  const { timeoutMs } = ctx.limits;

  app.withTypeProvider<TypeBoxTypeProvider>().post(
    '/v1/cluster/members',
    {
      schema: { body: memberBody },
      config: {
        access: 'admin',
        docs: {
          operationId: 'addMember',
          tag: 'cluster',
          summary: 'Add a member (as a learner, promoted to voter once caught up)',
          description:
            'Body `{"id", "peerAddress": "HOST:PORT"}`. Start the new node with `--join` first. Any node takes the request; followers forward it to the leader. ' +
            'Idempotent: adding a member that is already one (same id and address) changes nothing and answers 200 with its role, so a retry after a timeout never demotes a voter; the same id at another address is refused (remove it first).',
          responses: {
            201: {
              description: 'Added as a learner.',
              schema: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  role: { type: 'string' },
                  index: { type: 'integer' },
                  promotion: { type: 'string' },
                },
              },
            },
            200: {
              description: 'Already a member: nothing changed.',
              schema: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  role: { type: 'string' },
                  index: { type: 'integer' },
                  existing: { type: 'boolean' },
                },
              },
            },
          },
          errors: [...CLUSTER_ERRORS, 'UNSUPPORTED_MEDIA_TYPE'],
        },
      },
    },
    async (req, reply) => {
      const problem = peerAddressProblem(req.body.peerAddress);
      if (problem !== null)
        return sendError(reply, 'INVALID_ARGUMENT', `peerAddress: ${problem}`, { field: 'peerAddress' });
      try {
        const r = await node.addMember(req.body.id, req.body.peerAddress, timeoutMs);
        // Already a member: 200 with what it is, nothing changed (a retry is safe).
        if (r.existing)
          return reply.code(200).send({ id: req.body.id, role: r.existing.role, index: r.index, existing: true });
        return reply
          .code(201)
          .send({ id: req.body.id, role: 'learner', index: r.index, promotion: 'automatic once caught up' });
      } catch (err) {
        return sendNodeError(reply, err);
      }
    },
  );

  app.withTypeProvider<TypeBoxTypeProvider>().delete(
    '/v1/cluster/members/:id',
    {
      schema: { params: memberParams },
      config: {
        access: 'admin',
        docs: {
          operationId: 'removeMember',
          tag: 'cluster',
          summary: 'Remove a member',
          responses: {
            200: {
              description: 'Removed.',
              schema: {
                type: 'object',
                properties: { id: { type: 'string' }, removed: { type: 'boolean' }, index: { type: 'integer' } },
              },
            },
          },
          errors: [...CLUSTER_ERRORS],
        },
      },
    },
    async (req, reply) => {
      try {
        const r = await node.removeMember(req.params.id, timeoutMs);
        return { id: req.params.id, removed: true, index: r.index };
      } catch (err) {
        return sendNodeError(reply, err);
      }
    },
  );

  app.withTypeProvider<TypeBoxTypeProvider>().post(
    '/v1/cluster/leader',
    {
      schema: { body: transferBody },
      config: {
        access: 'admin',
        docs: {
          operationId: 'transferLeadership',
          tag: 'cluster',
          summary: 'Transfer leadership',
          description:
            'Body `{"to": "n2"}`, or no body / `{}`: the leader picks the recently active voter with the furthest log. Any node takes it (forwarded to the leader); answers `{"leader"}` once the new leader leads, or 504 TIMEOUT.',
          responses: {
            200: {
              description: 'Leadership moved.',
              schema: { type: 'object', properties: { leader: { type: 'string' } } },
            },
          },
          errors: [...CLUSTER_ERRORS, 'UNSUPPORTED_MEDIA_TYPE'],
        },
      },
    },
    async (req, reply) => {
      try {
        const res = await node.transferLeadershipTo(req.body?.to, timeoutMs);
        return { leader: res.leader ?? req.body?.to };
      } catch (err) {
        return sendNodeError(reply, err);
      }
    },
  );
}
