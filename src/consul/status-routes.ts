/**
 * `/v1/status/leader` and `/v1/status/peers`: Consul answers with Raft server addresses.
 * Rollcall members are named by the HTTP address each advertises (what they report to each
 * other, as /v1/cluster shows it); a member not heard from yet is named by its id.
 */
import type { MemberView } from '../node/index.js';
import type { ConsulContext } from './request.js';
import type { Routes } from './routing.js';

function addressOf(m: MemberView | undefined, id: string): string {
  const http = m?.reported?.http ?? null;
  return http === null ? id : http.replace(/^https?:\/\//, '');
}

export function statusRoutes(routes: Routes, ctx: ConsulContext): void {
  routes.add({
    method: 'GET',
    url: '/v1/status/leader',
    access: 'read',
    namespaced: false,
    servedWhenCorrupt: true,
    handler: async (_req, reply) => {
      const st = ctx.node.status();
      const leader =
        st.leader === null
          ? ''
          : addressOf(
              st.members.find((m) => m.id === st.leader),
              st.leader,
            );
      // A JSON string, as Consul answers (fastify would send a bare string as text).
      return reply.type('application/json; charset=utf-8').send(JSON.stringify(leader));
    },
  });

  routes.add({
    method: 'GET',
    url: '/v1/status/peers',
    access: 'read',
    namespaced: false,
    servedWhenCorrupt: true,
    handler: async () => {
      const st = ctx.node.status();
      return st.members.filter((m) => !m.isLearner).map((m) => addressOf(m, m.id));
    },
  });
}
