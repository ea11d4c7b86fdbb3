/**
 * Fault injection for the fault and linearizability tests, served only when the node
 * runs with ROLLCALL_TEST_FAULTS=1: isolate this node from some peers (both directions,
 * or one way), and heal.
 */
import type { FastifyInstance } from 'fastify';
import type { RollcallNode } from '../node/index.js';

const faultsBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dropTo: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 16 },
    dropFrom: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 16 },
  },
} as const;

export function registerTestRoutes(app: FastifyInstance, node: RollcallNode): void {
  app.put<{ Body: { dropTo?: string[]; dropFrom?: string[] } }>('/v1/test/faults', { schema: { body: faultsBody } }, async (req) => {
    node.setFaults({ dropTo: req.body.dropTo ?? [], dropFrom: req.body.dropFrom ?? [] });
    return { node: node.id, dropTo: req.body.dropTo ?? [], dropFrom: req.body.dropFrom ?? [] };
  });
}
