/** Cluster status. Membership and leadership transfer are in ./membership.ts. */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';

export function clusterRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { node } = ctx;

  app.get(
    '/v1/cluster',
    {
      config: {
        access: 'read',
        docs: {
          operationId: 'clusterStatus',
          tag: 'cluster',
          summary: 'Cluster status as this node sees it',
          description:
            'Per member: role, term, commit and applied index, lag, the leader\'s match index (on the leader), connection and last contact, `slowestWriteMs` (its slowest Raft write over 500 ms in the last 30 s, 0 if none: a slow disk), `stateMachineVersion` (the state-machine version its build implements; 1 for a build that does not say), and `started` (whether it is in the started-member record, from cluster version 6: a member recorded as started that lost its data is refused at start; docs/operations.md, "Replacing a member whose data was lost"). `clusterVersion`: the version the cluster runs at; `supportedVersion`: the highest every member supports as this node last heard (the leader raises `clusterVersion` to it; docs/operations.md, "Upgrades"). Other members report themselves every 500 ms. `clusterId`: the id of the cluster this node belongs to, which the peer handshake checks (null for a cluster founded by a build before founding ids; docs/operations.md, "Cluster ids").',
          responses: {
            200: {
              description: 'Status.',
              schema: {
                type: 'object',
                properties: {
                  leader: { type: ['string', 'null'] },
                  term: { type: 'integer' },
                  revision: { type: 'integer' },
                  clusterId: { type: ['string', 'null'] },
                  clusterVersion: { type: 'integer' },
                  supportedVersion: { type: 'integer' },
                  protection: { type: 'object' },
                  members: { type: 'array', items: { type: 'object' } },
                },
              },
            },
          },
          errors: [],
        },
      },
    },
    async () => {
      const st = node.status();
      const now = Date.now();
      return {
        leader: st.leader,
        term: st.term,
        revision: st.revision,
        clusterId: node.clusterId ?? null,
        clusterVersion: st.clusterVersion,
        supportedVersion: st.supportedVersion,
        protection: st.protection,
        members: st.members.map((m) => {
          const r = m.reported;
          const isSelf = m.id === st.id;
          return {
            id: m.id,
            role: isSelf ? st.role : r ? r.role : 'unknown',
            voter: !m.isLearner,
            term: isSelf ? st.term : (r?.term ?? null),
            commitIndex: isSelf ? st.commitIndex : (r?.commitIndex ?? null),
            appliedIndex: isSelf ? st.appliedIndex : (r?.appliedIndex ?? null),
            lag: r || isSelf ? Math.max(0, st.commitIndex - (isSelf ? st.appliedIndex : r!.appliedIndex)) : null,
            match: m.match,
            http: r?.http ?? null,
            // The member's slowest slow Raft write (over 500 ms) of the last 30 s: whose disk is slow.
            slowestWriteMs: r?.slowestWriteMs ?? null,
            stateMachineVersion: isSelf ? st.buildVersion : r ? (r.stateMachineVersion ?? 1) : null,
            started: m.started ?? false,
            connected: m.connected,
            lastContactMs: m.lastContact === null ? null : Math.max(0, now - m.lastContact),
          };
        }),
      };
    },
  );
}
