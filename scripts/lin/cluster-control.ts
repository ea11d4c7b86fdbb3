/**
 * Cluster control for the nemesis: find the leader, drop peer traffic through the test
 * fault hook (PUT /v1/test/faults, nodes started with ROLLCALL_TEST_FAULTS=1), heal
 * everything, and wait for the cluster to settle. Every wait polls a condition, bounded.
 */
import type { ClusterView } from './cluster-view.js';
import { HttpError, request, sleep } from './http.js';

/** Polls `check` every `everyMs` until it returns a value (not undefined), or null after `timeoutMs`. */
export async function poll<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
    }
    if (Date.now() >= deadline) return null;
    await sleep(everyMs);
  }
}

/** Members whose process runs and is not stopped. */
export function reachable(view: ClusterView): string[] {
  return view.members.filter((id) => {
    const n = view.cluster.node(id);
    return n.proc !== null && !n.paused;
  });
}

interface StatusMember {
  id: string;
  role: string;
  voter: boolean;
  commitIndex: number | null;
  appliedIndex: number | null;
}
interface Status {
  leader: string | null;
  term: number;
  members: StatusMember[];
}

async function status(url: string, timeoutMs = 1000): Promise<Status | null> {
  try {
    const r = await request('GET', `${url}/v1/cluster`, undefined, {}, timeoutMs);
    return r.status === 200 ? (r.body as Status) : null;
  } catch (err) {
    if (err instanceof HttpError) return null;
    throw err;
  }
}

/** The leader, once a node says it leads and a majority of the reachable members agree; null after `timeoutMs`. */
export async function findLeader(view: ClusterView, timeoutMs = 3000): Promise<string | null> {
  return poll(async () => {
    const ids = reachable(view);
    const views = await Promise.all(ids.map(async (id) => ({ id, st: await status(view.url(id)) })));
    const counts = new Map<string, number>();
    for (const v of views) if (v.st?.leader) counts.set(v.st.leader, (counts.get(v.st.leader) ?? 0) + 1);
    for (const [leader, n] of counts) {
      const self = views.find((v) => v.id === leader)?.st;
      const selfLeads = self?.members.find((m) => m.id === leader)?.role === 'leader';
      if (selfLeads && n * 2 > view.members.length) {
        view.leaderHint = leader;
        return leader;
      }
    }
    return undefined;
  }, timeoutMs);
}

/** Whom each reachable member names as leader right now (`?` when it does not answer), as `n1:n2 n2:n2 n3:-`. */
export async function leadersSeen(view: ClusterView, timeoutMs = 500): Promise<string> {
  const ids = reachable(view);
  const seen = await Promise.all(ids.map(async (id) => ({ id, st: await status(view.url(id), timeoutMs) })));
  return seen.map(({ id, st }) => `${id}:${st === null ? '?' : (st.leader ?? '-')}`).join(' ');
}

/** Sets a node's fault lists (replacing what it had). True when the node took them. */
export async function setFaults(
  view: ClusterView,
  id: string,
  dropTo: readonly string[],
  dropFrom: readonly string[],
  timeoutMs = 3000,
): Promise<boolean> {
  const done = await poll(async () => {
    const r = await request('PUT', `${view.url(id)}/v1/test/faults`, { dropTo, dropFrom }, {}, 1000);
    if (r.status === 404 && r.body?.error?.code === 'ROUTE_NOT_FOUND') {
      throw new Error(
        `${id} has no fault hook (PUT /v1/test/faults answered 404): start the cluster with ROLLCALL_TEST_FAULTS=1`,
      );
    }
    return r.status === 200 ? true : undefined;
  }, timeoutMs);
  return done === true;
}

/** Cuts `id` off from every other member, both ways, on both sides. */
export async function isolate(view: ClusterView, id: string): Promise<boolean> {
  const others = view.members.filter((m) => m !== id);
  const results = await Promise.all([
    setFaults(view, id, others, others),
    ...others.filter((o) => reachable(view).includes(o)).map((o) => setFaults(view, o, [id], [id])),
  ]);
  return results.every(Boolean);
}

/** Heals the fault hook on every running member. */
export async function clearFaults(view: ClusterView): Promise<boolean> {
  const results = await Promise.all(reachable(view).map((id) => setFaults(view, id, [], [], 10_000)));
  return results.every(Boolean);
}

/**
 * Waits until every member answers, all name the same leader, that leader's membership is
 * `view.members`, and every member has applied everything the leader committed. Returns
 * the leader, or null after `timeoutMs`.
 */
export async function settle(view: ClusterView, timeoutMs = 30_000): Promise<string | null> {
  return poll(
    async () => {
      const ids = view.members;
      if (reachable(view).length !== ids.length) return undefined;
      const views = await Promise.all(ids.map((id) => status(view.url(id))));
      if (views.some((v) => v === null)) return undefined;
      const leader = views[0]!.leader;
      if (leader === null || !views.every((v) => v!.leader === leader) || !ids.includes(leader)) return undefined;
      const st = views[ids.indexOf(leader)]!;
      const self = st.members.find((m) => m.id === leader);
      if (self?.role !== 'leader' || self.commitIndex === null) return undefined;
      const memberIds = st.members.map((m) => m.id).sort();
      if (memberIds.join(',') !== [...ids].sort().join(',')) return undefined;
      if (!st.members.every((m) => m.voter)) return undefined;
      const commit = self.commitIndex;
      for (let i = 0; i < ids.length; i++) {
        const me = views[i]!.members.find((m) => m.id === ids[i]);
        if (me?.appliedIndex !== commit) return undefined;
      }
      view.leaderHint = leader;
      return leader;
    },
    timeoutMs,
    150,
  );
}
