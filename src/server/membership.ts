/**
 * Cluster operations: add a member (as a learner, promoted to voter once caught up),
 * remove a member, transfer leadership. Any node takes them; followers forward to the
 * leader.
 */
import type { FastifyInstance } from 'fastify';
import type { RollcallNode } from '../node/index.js';
import { sendError, sendNodeError } from './errors.js';
import { peerAddressProblem } from './peer-address.js';

const memberBody = {
  type: 'object',
  required: ['id', 'peerAddress'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
    peerAddress: { type: 'string', minLength: 3, maxLength: 300, pattern: '^.+:[0-9]{1,5}$' },
  },
} as const;

const memberParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

const transferBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { to: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

export function registerMembershipRoutes(app: FastifyInstance, node: RollcallNode, timeoutMs: number): void {
  app.post<{ Body: { id: string; peerAddress: string } }>('/v1/cluster/members', { schema: { body: memberBody } }, async (req, reply) => {
    const problem = peerAddressProblem(req.body.peerAddress);
    if (problem !== null) return sendError(reply, 'INVALID_ARGUMENT', `peerAddress: ${problem}`, { field: 'peerAddress' });
    try {
      const r = await node.addMember(req.body.id, req.body.peerAddress, timeoutMs);
      // Already a member: 200 with what it is, nothing changed (a retry is safe).
      if (r.existing) return reply.code(200).send({ id: req.body.id, role: r.existing.role, index: r.index, existing: true });
      return reply.code(201).send({ id: req.body.id, role: 'learner', index: r.index, promotion: 'automatic once caught up' });
    } catch (err) {
      return sendNodeError(reply, err);
    }
  });

  app.delete<{ Params: { id: string } }>('/v1/cluster/members/:id', { schema: { params: memberParams } }, async (req, reply) => {
    try {
      const r = await node.removeMember(req.params.id, timeoutMs);
      return { id: req.params.id, removed: true, index: r.index };
    } catch (err) {
      return sendNodeError(reply, err);
    }
  });

  app.post<{ Body: { to?: string } | null }>('/v1/cluster/leader', { schema: { body: transferBody } }, async (req, reply) => {
    try {
      const res = await node.transferLeadershipTo(req.body?.to, timeoutMs);
      return { leader: res.leader ?? req.body?.to };
    } catch (err) {
      return sendNodeError(reply, err);
    }
  });
}
