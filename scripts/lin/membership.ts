/**
 * Membership steps of the nemesis, through the HTTP admin API only (what an operator does):
 * add a fresh node (`POST /v1/cluster/members`, a learner the leader promotes once caught
 * up), remove a member (`DELETE /v1/cluster/members/:id`), and read the membership a node
 * reports. Every step is retried while the answer says "not now" (503, a change already
 * pending) and confirmed by reading the membership back, since an attempt whose answer was
 * lost may have gone through.
 */
import type { LocalNode } from '../local-cluster.js';
import { poll, reachable } from './cluster-control.js';
import type { ClusterView } from './cluster-view.js';
import { request } from './http.js';

export interface MemberInfo {
  readonly id: string;
  readonly role: string;
  readonly voter: boolean;
}

/** The membership as node `via` reports it (GET /v1/cluster), or null when it does not answer. */
export async function membersSeenBy(view: ClusterView, via: string): Promise<MemberInfo[] | null> {
  const r = await request('GET', `${view.url(via)}/v1/cluster`, undefined, {}, 1000).catch(() => null);
  return r?.status === 200 ? (r.body.members as MemberInfo[]) : null;
}

/** A running member to send an admin request through, other than `avoid` when possible. */
function via(view: ClusterView, avoid?: string): string | undefined {
  const up = reachable(view);
  return up.find((m) => m !== avoid) ?? up[0];
}

/**
 * Asks the cluster to add `n` (started with `--join`) as a learner. True once the
 * membership names it; false after `timeoutMs`. Throws on a refusal retrying cannot fix.
 */
export async function requestAdd(view: ClusterView, n: LocalNode, timeoutMs = 15_000): Promise<boolean> {
  const added = await poll(
    async () => {
      const through = via(view);
      if (!through) return undefined;
      const r = await request(
        'POST',
        `${view.url(through)}/v1/cluster/members`,
        { id: n.id, peerAddress: view.cluster.peerAddress(n.id) },
        {},
        6000,
      );
      if (r.status === 201) return true;
      // An earlier attempt may have gone through after its answer was lost.
      if ((await membersSeenBy(view, through))?.some((m) => m.id === n.id)) return true;
      if (r.status >= 500 || r.body?.error?.code === 'CONF_CHANGE_PENDING') return undefined;
      throw new Error(`adding ${n.id}: ${r.status} ${JSON.stringify(r.body)}`);
    },
    timeoutMs,
    200,
  );
  return added === true;
}

/**
 * Asks the cluster to remove member `id`, through another member. True once a remaining
 * member's membership no longer names it; false after `timeoutMs`.
 */
export async function requestRemove(view: ClusterView, id: string, timeoutMs = 20_000): Promise<boolean> {
  const removed = await poll(
    async () => {
      const through = via(view, id);
      if (!through) return undefined;
      const r = await request(
        'DELETE',
        `${view.url(through)}/v1/cluster/members/${encodeURIComponent(id)}`,
        undefined,
        {},
        6000,
      );
      if (r.status === 200 || r.body?.error?.code === 'NOT_MEMBER') return true;
      const ids = await membersSeenBy(view, through);
      if (ids !== null && !ids.some((m) => m.id === id)) return true;
      if (r.status >= 500 || r.body?.error?.code === 'CONF_CHANGE_PENDING') return undefined;
      throw new Error(`removing ${id}: ${r.status} ${JSON.stringify(r.body)}`);
    },
    timeoutMs,
    200,
  );
  return removed === true;
}

/**
 * Waits until a node that leads lists `id` as a voter (the leader promotes a learner once
 * it has caught up). The time it took in ms, or null after `timeoutMs`.
 */
export async function waitVoter(view: ClusterView, id: string, timeoutMs = 20_000): Promise<number | null> {
  const t0 = Date.now();
  const done = await poll(
    async () => {
      for (const m of reachable(view)) {
        const members = await membersSeenBy(view, m);
        const self = members?.find((x) => x.id === m);
        if (self?.role !== 'leader') continue;
        return members!.find((x) => x.id === id)?.voter === true ? true : undefined;
      }
      return undefined;
    },
    timeoutMs,
    150,
  );
  return done === null ? null : Date.now() - t0;
}
