/** A tiny JSON-over-HTTP client for cluster tests. */
import { waitFor } from './wait.js';

export { waitFor };

export interface JsonResponse<T = any> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

export async function http<T = any>(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<JsonResponse<T>> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

/** The leader as every running node reports it, once they agree. */
export async function waitForLeader(urls: readonly string[], timeoutMs = 20_000): Promise<string> {
  return waitFor(
    'a leader all nodes agree on, and no raise of the cluster version pending',
    async () => {
      type View = {
        leader: string | null;
        clusterVersion?: number;
        supportedVersion?: number;
        members: { id: string; connected?: boolean; stateMachineVersion?: number | null }[];
      };
      const views = await Promise.all(
        urls.map((u) => http('GET', `${u}/v1/cluster`, undefined, {}, 2000).then((r) => r.body as View)),
      );
      const first = views[0]?.leader;
      // A new cluster starts at version 1 and the leader raises it once every member has
      // reported its build (docs/operations.md, "Upgrades"); tests expect the build's
      // features, so wait until each node has heard every member it is connected to and no
      // raise is due (a member killed before a restarted node heard from it stays unheard).
      const raised = views.every(
        (v) =>
          v.clusterVersion === undefined ||
          (v.members.every((m) => m.stateMachineVersion !== null || m.connected === false) &&
            v.clusterVersion >= (v.supportedVersion ?? 1)),
      );
      // A leader just killed is still named until an election: only one every node is connected to counts.
      const reachable = views.every((v) => v.members.find((m) => m.id === v.leader)?.connected !== false);
      return first && raised && reachable && views.every((v) => v.leader === first) ? first : undefined;
    },
    timeoutMs,
  );
}

export const register = (
  url: string,
  ns: string,
  svc: string,
  id: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) => http('PUT', `${url}/v1/namespaces/${ns}/services/${svc}/instances/${id}`, body, headers);

export const list = (url: string, ns: string, svc: string, query = '') =>
  http('GET', `${url}/v1/namespaces/${ns}/services/${svc}/instances${query}`);

/** A gauge or counter from a node's /metrics (the first sample of that name, without labels). */
export async function metric(url: string, name: string): Promise<number> {
  const r = await fetch(`${url}/metrics`);
  const line = (await r.text()).split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`${url}/metrics has no ${name}`);
  return Number(line.slice(name.length + 1));
}

/**
 * `POST /v1/acl/bootstrap` on `nodeUrl` once the cluster can take it: a new cluster raises its
 * version to this build's once every member reported it, and replicated tokens need that raise
 * (409 CLUSTER_NOT_UPGRADED until then, longer on a busy machine; 503 while there is no leader).
 * Answers the first other reply, whatever its status: the caller asserts on it.
 */
export async function bootstrapWhenReady(nodeUrl: string, headers: Record<string, string> = {}): Promise<JsonResponse> {
  return waitFor('bootstrap once the cluster version allows it', async () => {
    const r = await http('POST', `${nodeUrl}/v1/acl/bootstrap`, {}, headers);
    if (r.status === 409 && r.body?.error?.code === 'CLUSTER_NOT_UPGRADED') return undefined;
    if (r.status === 503) return undefined;
    return r;
  });
}
