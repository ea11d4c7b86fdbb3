/**
 * GET /v1/services: every service (of a namespace) with per-health instance counts and,
 * with `instances=true`, the instances themselves, all read at one revision. One call (or
 * one paginated listing: every page is read at the first page's revision) gives a
 * consistent picture to start a watch from (`fromRevision` = revision + 1).
 *
 * Paginated like every listing (../listing/serve.ts): without `limit`, more than
 * the cap (10,000 services, or instances with `instances=true`) is refused; `limit` counts
 * services, or with `instances=true` instances, and a service whose instances run over a
 * page boundary appears on each of those pages with the same summary.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { sendNodeError } from '../errors.js';
import { encodeContinue, listingSignature } from '../listing/continue-token.js';
import { matching } from '../listing/counts.js';
import { rangeEnd, rangeStart } from '../listing/instance-index.js';
import { openLister, openPage, sendView } from '../listing/serve.js';
import { groupedWriter, servicesWriter } from '../listing/writers.js';
import type { MonitorNode } from '../node-api.js';
import { Name, PAGE_QUERY, PageLimit, StringEnum } from '../schemas.js';

const servicesQuery = Type.Object(
  {
    namespace: Type.Optional(Name('Only this namespace.')),
    instances: Type.Optional(Type.Boolean({ description: "Include each service's instances (default false)." })),
    includeDisabled: Type.Optional(
      Type.Boolean({
        description: "With instances=true: also disabled instances (default true: this is an operator's view).",
      }),
    ),
    consistency: Type.Optional(
      StringEnum(
        ['linearizable', 'serializable'],
        'linearizable (default) or serializable (local, possibly stale; works without a leader).',
      ),
    ),
    limit: Type.Optional(
      PageLimit(
        'At most this many services, or with instances=true instances (capped at 10,000, --list-max-items); `continue` is set when more are left.',
      ),
    ),
    continue: Type.Optional(PAGE_QUERY.continue),
  },
  { additionalProperties: false },
);

export interface ServiceListDeps {
  readonly node: MonitorNode;
  /** Deadline of a linearizable read (default 5000 ms). */
  readonly timeoutMs?: number;
  /** The most items one listing answer may hold (default 10,000; see src/server/listing/serve.ts). */
  readonly listMaxItems?: number | undefined;
}

export function serviceRoutes(app: FastifyInstance, deps: ServiceListDeps): void {
  const { node } = deps;
  const lister = openLister(app, node.registry, { waitMs: deps.timeoutMs ?? 5000, maxItems: deps.listMaxItems });
  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/services',
    {
      schema: { querystring: servicesQuery },
      config: {
        access: 'read',
        namespace: 'query',
        docs: {
          operationId: 'listServices',
          tag: 'instances',
          summary: 'List services, with health counts and optionally their instances, in pages',
          description:
            'Services with at least one instance, sorted by namespace then service, all read at one `revision`. Counts cover enabled instances. ' +
            'With `instances=true` each service carries its instances (the Instance shape), so a watch from `revision + 1` continues the picture without a gap. ' +
            "Pages: `limit` services (with `instances=true`: instances) and `continue`, every page read at the first page's revision; without `limit`, more than 10,000 is refused (LIMIT_EXCEEDED).",
          responses: {
            200: {
              description: 'The services.',
              schema: {
                type: 'object',
                required: ['revision', 'services'],
                properties: {
                  revision: { type: 'integer' },
                  services: { type: 'array', items: { type: 'object' } },
                  continue: {
                    type: 'string',
                    description: 'Present when more are left: pass it as `continue` for the next page.',
                  },
                },
              },
            },
          },
          errors: ['INVALID_ARGUMENT', 'LIMIT_EXCEEDED', 'COMPACTED', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const withInstances = q.instances === true;
      const includeDisabled = q.includeDisabled !== false;
      const listing = listingSignature('services', {
        namespace: q.namespace,
        instances: withInstances,
        includeDisabled: withInstances ? includeDisabled : undefined,
      });
      const page = await openPage(lister, reply, q, listing, {
        reach: async () => {
          if (q.consistency === 'serializable') return true;
          try {
            await node.readBarrier(deps.timeoutMs ?? 5000);
            return true;
          } catch (err) {
            sendNodeError(reply, err);
            return false;
          }
        },
        count: () =>
          withInstances
            ? matching(lister.index.namespaceCounts(q.namespace), includeDisabled, 'all')
            : lister.index.serviceCount(q.namespace),
        items: withInstances ? 'instances' : 'services',
      });
      if (page === null) return reply;
      const at = page.view;
      const prefix = q.namespace === undefined ? '' : `${q.namespace}\0`;
      const plan = {
        view: at,
        after: rangeStart(prefix, page.token?.after),
        end: rangeEnd(prefix),
        limit: page.limit,
        token: (after: string) => encodeContinue({ revision: at.revision, after, listing }),
      };
      return sendView(
        lister,
        reply,
        at,
        withInstances ? groupedWriter({ ...plan, pass: (i) => includeDisabled || i.enabled }) : servicesWriter(plan),
        withInstances,
      );
    },
  );
}
