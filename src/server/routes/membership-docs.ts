/**
 * Access and documentation for routes registered by modules that do not declare them
 * (membership.ts, test-routes.ts): attached in an onRoute hook, before the auth hook and
 * the OpenAPI generator read them. A route without config is admin-only anyway.
 */
import type { RouteOptions } from 'fastify';
import type { Permission } from '../auth.js';
import type { RouteConfig, RouteDocs } from '../route-config.js';

const CLUSTER_ERRORS = ['INVALID_ARGUMENT', 'INVALID_JSON', 'CONF_CHANGE_INVALID', 'CONF_CHANGE_PENDING', 'NOT_MEMBER', 'NO_LEADER', 'TRANSFER_IN_PROGRESS', 'SHUTTING_DOWN', 'TIMEOUT'] as const;

export const EXTERNAL_ROUTES: Readonly<Record<string, { readonly access: Permission; readonly docs?: RouteDocs }>> = {
  'POST /v1/cluster/members': {
    access: 'admin',
    docs: {
      operationId: 'addMember',
      tag: 'cluster',
      summary: 'Add a member (as a learner, promoted to voter once caught up)',
      description:
        'Body `{"id", "peerAddress": "HOST:PORT"}`. Start the new node with `--join` first. Any node takes the request; followers forward it to the leader. ' +
        'Idempotent: adding a member that is already one (same id and address) changes nothing and answers 200 with its role, so a retry after a timeout never demotes a voter; the same id at another address is refused (remove it first).',
      responses: {
        201: { description: 'Added as a learner.', schema: { type: 'object', properties: { id: { type: 'string' }, role: { type: 'string' }, index: { type: 'integer' }, promotion: { type: 'string' } } } },
        200: { description: 'Already a member: nothing changed.', schema: { type: 'object', properties: { id: { type: 'string' }, role: { type: 'string' }, index: { type: 'integer' }, existing: { type: 'boolean' } } } },
      },
      errors: [...CLUSTER_ERRORS, 'UNSUPPORTED_MEDIA_TYPE'],
    },
  },
  'DELETE /v1/cluster/members/:id': {
    access: 'admin',
    docs: {
      operationId: 'removeMember',
      tag: 'cluster',
      summary: 'Remove a member',
      responses: { 200: { description: 'Removed.', schema: { type: 'object', properties: { id: { type: 'string' }, removed: { type: 'boolean' }, index: { type: 'integer' } } } } },
      errors: [...CLUSTER_ERRORS],
    },
  },
  'POST /v1/cluster/leader': {
    access: 'admin',
    docs: {
      operationId: 'transferLeadership',
      tag: 'cluster',
      summary: 'Transfer leadership',
      description: 'Body `{"to": "n2"}`, or no body / `{}`: the leader picks the recently active voter with the furthest log. Any node takes it (forwarded to the leader); answers `{"leader"}` once the new leader leads, or 504 TIMEOUT.',
      responses: { 200: { description: 'Leadership moved.', schema: { type: 'object', properties: { leader: { type: 'string' } } } } },
      errors: [...CLUSTER_ERRORS, 'UNSUPPORTED_MEDIA_TYPE'],
    },
  },
  // Test-only (ROLLCALL_TEST_FAULTS=1): admin when auth is on, and left out of the API description.
  'PUT /v1/test/faults': { access: 'admin' },
};

/** onRoute hook: gives a route without `config.access` its entry from EXTERNAL_ROUTES. */
export function attachExternalConfig(route: RouteOptions): void {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const config = (route.config ?? {}) as Partial<RouteConfig>;
  if (config.access !== undefined) return;
  for (const m of methods) {
    const extra = EXTERNAL_ROUTES[`${m} ${route.url}`];
    if (extra === undefined) continue;
    route.config = { ...config, access: extra.access, ...(extra.docs ? { docs: extra.docs } : {}) };
    return;
  }
}
