/**
 * GET /v1/health/reports: what providers last reported, as the leader's tracker holds it.
 * Reports are not replicated (they ride on keepalives to the leader), so a follower relays
 * the question to the leader's HTTP address (from the members' gossip) with `local=true`,
 * which the leader answers from memory and nobody relays again.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TrackedHealth } from '../../health/index.js';
import type { HealthDeps, RelayFetch } from './health.js';

/** A filter compared with what the tracker holds: any name up to 128 characters. */
const ReportName = (description: string) => Type.String({ minLength: 1, maxLength: 128, description });

const reportsQuery = Type.Object(
  {
    namespace: Type.Optional(ReportName('Only this namespace.')),
    service: Type.Optional(ReportName('Only this service.')),
    local: Type.Optional(Type.Boolean({ description: 'Answer from this node only; never relay to the leader.' })),
  },
  { additionalProperties: false },
);
type Query = Static<typeof reportsQuery>;

export interface ReportsReply {
  /** Who answered from memory (the leader), or null when nobody could. */
  readonly from: string | null;
  readonly available: boolean;
  readonly reason?: string;
  readonly reports: readonly (TrackedHealth & { readonly ageMs: number })[];
}

export function healthReportRoutes(app: FastifyInstance, deps: HealthDeps): void {
  const { node } = deps;
  const relay: RelayFetch = deps.relayFetch ?? ((url, init) => fetch(url, init));

  const local = (q: Query): ReportsReply | null => {
    const list = deps.reports?.() ?? null;
    if (list === null) return null;
    const now = Date.now();
    const reports = list
      .filter(
        (r) =>
          (q.namespace === undefined || r.namespace === q.namespace) &&
          (q.service === undefined || r.service === q.service),
      )
      .map((r) => ({ ...r, ageMs: Math.max(0, now - r.reportedAt) }));
    return { from: node.id, available: true, reports };
  };

  const unavailable = (reason: string): ReportsReply => ({ from: null, available: false, reason, reports: [] });

  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/health/reports',
    {
      schema: { querystring: reportsQuery },
      config: {
        access: 'read',
        namespace: 'query',
        docs: {
          operationId: 'healthReports',
          tag: 'operations',
          summary: 'What providers last reported with their keepalives (from the leader)',
          description:
            'Per instance: the last `report` (successRatio, p99Ms, cpu, memory, disk), `reportedAt`, `ageMs`, the `state` the leader decided, `since`, and a `pending` change awaiting confirmation. ' +
            'A follower relays to the leader; `available: false` with a `reason` when no leader answers.',
          responses: {
            200: {
              description: 'Reports.',
              schema: {
                type: 'object',
                properties: {
                  from: { type: ['string', 'null'] },
                  available: { type: 'boolean' },
                  reason: { type: 'string' },
                  reports: { type: 'array', items: { type: 'object' } },
                },
              },
            },
          },
          errors: ['INVALID_ARGUMENT'],
        },
      },
    },
    async (req): Promise<ReportsReply> => {
      const q = req.query;
      if (deps.reports === undefined) return unavailable('this node keeps no health reports');
      const mine = local(q);
      if (mine !== null) return mine;
      if (q.local === true) return unavailable(`${node.id} is not the leader`);
      const leader = node.leader;
      if (leader === null) return unavailable("no leader: reports live in the leader's memory");
      const http = node.status().members.find((m) => m.id === leader)?.reported?.http ?? null;
      if (http === null) return unavailable(`the address of leader ${leader} is not known yet`);
      return relayTo(relay, http, q, req, deps.timeoutMs ?? 2000).catch((err: unknown) =>
        unavailable(`leader ${leader} did not answer: ${err instanceof Error ? err.message : String(err)}`),
      );
    },
  );
}

async function relayTo(
  relay: RelayFetch,
  base: string,
  q: Query,
  req: FastifyRequest,
  timeoutMs: number,
): Promise<ReportsReply> {
  const params = new URLSearchParams({ local: 'true' });
  if (q.namespace !== undefined) params.set('namespace', q.namespace);
  if (q.service !== undefined) params.set('service', q.service);
  const headers: Record<string, string> = { accept: 'application/json' };
  // The caller's own credentials, so the leader applies the same access rules.
  if (typeof req.headers.authorization === 'string') headers.authorization = req.headers.authorization;
  const res = await relay(`${base}/v1/health/reports?${params}`, { headers, signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  return (await res.json()) as ReportsReply;
}
