/**
 * The instance listings: a service's instances (with blocking queries) and a namespace's,
 * both paginated at one revision. The handlers are in ../../listing/instance-lists.ts.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../../context.js';
import { listNamespaceInstances, listServiceInstances } from '../../listing/instance-lists.js';
import type { Lister } from '../../listing/serve.js';
import { namespaceListQuery, namespaceParams, readQuery, serviceParams } from '../../schemas.js';
import { PAGE_ERRORS, READ_ERRORS } from './replies.js';

const INSTANCES = { type: 'array', items: { $ref: '#/components/schemas/Instance' } } as const;
const CONTINUE = {
  type: 'string',
  description: 'Present when more items are left: pass it as `continue` for the next page.',
} as const;
const LIST_REPLY = {
  type: 'object',
  properties: {
    revision: { type: 'integer' },
    serviceRevision: { type: 'integer' },
    instances: INSTANCES,
    continue: CONTINUE,
  },
} as const;
const NAMESPACE_LIST_REPLY = {
  type: 'object',
  properties: { revision: { type: 'integer' }, instances: INSTANCES, continue: CONTINUE },
} as const;

/** GET /v1/namespaces/{ns}/services/{svc}/instances. */
export function listServiceInstancesRoute(app: FastifyInstance, ctx: ServerContext, lister: Lister): void {
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/namespaces/:ns/services/:svc/instances',
    {
      schema: { params: serviceParams, querystring: readQuery },
      config: {
        access: 'read',
        namespace: 'params',
        docs: {
          operationId: 'listInstances',
          tag: 'instances',
          summary: "List a service's instances (optionally a blocking query), in pages",
          description:
            'Sorted by cluster, then id; disabled instances only with `includeDisabled=true`; `health=healthy` or `health=usable` leaves out the rest. ' +
            "Blocking query: with `index` equal to the service's current index (`x-rollcall-index`), the answer waits until a change touches this service, or until `wait` ends (then it is unchanged). " +
            'Any other `index` (older, or newer as after a restart) is answered at once. ' +
            "Pages: `limit` items, then `continue` for the next page, every page read at the first page's revision. Without `limit`, a list of more than 10,000 instances is refused (LIMIT_EXCEEDED).",
          responses: {
            200: {
              description: 'The instances.',
              schema: LIST_REPLY,
              headers: { 'x-rollcall-index': "The service's revision: pass it as `index` to block until it changes." },
            },
          },
          errors: [...READ_ERRORS, ...PAGE_ERRORS],
        },
      },
    },
    async (req, reply) => listServiceInstances(ctx, lister, req.params.ns, req.params.svc, req.query, reply),
  );
}

/** GET /v1/namespaces/{ns}/instances. */
export function listNamespaceInstancesRoute(app: FastifyInstance, ctx: ServerContext, lister: Lister): void {
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/namespaces/:ns/instances',
    {
      schema: { params: namespaceParams, querystring: namespaceListQuery },
      config: {
        access: 'read',
        namespace: 'params',
        docs: {
          operationId: 'listNamespaceInstances',
          tag: 'instances',
          summary: 'List every instance of a namespace, in pages',
          description:
            'Sorted by service, cluster, then id, all at one `revision`: a namespace-wide watch that was told `compacted` re-lists here and resumes from `revision + 1`. ' +
            'Disabled instances only with `includeDisabled=true`; `health` filters as on a service list; `limit` and `continue` page as on a service list.',
          responses: { 200: { description: 'The instances.', schema: NAMESPACE_LIST_REPLY } },
          errors: [...READ_ERRORS, ...PAGE_ERRORS],
        },
      },
    },
    async (req, reply) => listNamespaceInstances(ctx, lister, req.params.ns, req.query, reply),
  );
}
