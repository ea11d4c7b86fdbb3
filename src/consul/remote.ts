/**
 * `?dc=` on the Consul API (issue 18): a read about one service in another datacenter is
 * asked of a live member of that datacenter, as a Consul agent forwards it to a server
 * there. This node keeps nothing of the other datacenter's registry: the member answers
 * with its native service listing, read the way the request asked (linearizable, or
 * serializable for `?stale`; blocking with the client's `index` and `wait`), and this node
 * writes the Consul answer from it with the same shapes as a local one.
 *
 * - Which member: the federation's route (live members, the leader first), tried in turn
 *   within one deadline (the read's timeout plus its wait). The request is the native
 *   `GET /v1/namespaces/{ns}/services/{svc}/instances?dc=<dc>`, signed as a federation hop
 *   (`x-rollcall-federation-hop`, as the native API's forwarding does), with the caller's
 *   Consul token as its bearer token: the other datacenter checks it against its own tokens.
 * - Index: `X-Consul-Index` is the service's revision in that datacenter (its own revision
 *   numbers), so a client's next `index` blocks there until the service changes.
 * - Failures, as Consul answers them: a datacenter the federation does not know (or
 *   federation off) is 500 `No path to datacenter`; no member answering within the deadline
 *   is 500 `rpc error: ...`; a token refused there is 403 with that datacenter's reason.
 */

import { attemptTimeoutMs } from '../federation/forward.js';
import { HOP_HEADER } from '../federation/host.js';
import type { Health, Instance } from '../registry/index.js';
import { ConsulError } from './errors.js';

/** What the Consul API needs of the federation (src/federation's FederationHost has it). */
export interface ConsulFederation {
  /** The members of `datacenter` to try, in order; null: no such datacenter is known. */
  route(datacenter: string): { readonly members: readonly { readonly address: string }[] } | null;
  /** Every known datacenter's name, this one first, then by round-trip time. */
  datacentersByRtt(): string[];
  /** Signs a forwarded request (`x-rollcall-federation-hop`). */
  hopHeader(method: string, url: string): string;
}

export interface RemoteRead {
  readonly datacenter: string;
  readonly namespace: string;
  readonly service: string;
  readonly stale: boolean;
  /** Consul's `index`: the member blocks while the service's revision there is this one. */
  readonly index: number | undefined;
  readonly waitMs: number;
  readonly token: string | undefined;
  /** Deadline of one read, the wait aside. */
  readonly timeoutMs: number;
  /** The client went away: stop asking. */
  readonly signal: AbortSignal;
}

export interface RemoteService {
  /** The service's revision in that datacenter (at least 1). */
  readonly index: number;
  readonly knownLeader: boolean;
  /** Its enabled instances, in the listing's order. */
  readonly instances: readonly Instance[];
}

export const NO_PATH = 'No path to datacenter';
/** Which datacenter answered, as the native API's forwarding says it (src/server/routes/federation.ts). */
export const DATACENTER_HEADER = 'x-rollcall-datacenter';

/** Page size asked for; pages are followed, so a larger service is still answered whole. */
const PAGE = 10_000;
const HEALTHS: ReadonlySet<string> = new Set<Health>(['healthy', 'subhealthy', 'down', 'suspect']);

/** The members of `datacenter` to ask, or 500 `No path to datacenter` as Consul answers for one it cannot reach. */
export function remoteMembers(federation: ConsulFederation | null, datacenter: string): readonly string[] {
  const route = federation?.route(datacenter) ?? null;
  if (route === null) throw new ConsulError(500, NO_PATH);
  if (route.members.length === 0)
    throw new ConsulError(500, `rpc error: ${NO_PATH} ${datacenter}: every known member is unreachable`);
  return route.members.map((m) => m.address);
}

/** Reads one service of another datacenter from the first of its members that answers. */
export async function readRemoteService(federation: ConsulFederation | null, r: RemoteRead): Promise<RemoteService> {
  const addresses = remoteMembers(federation, r.datacenter);
  // The member adds its own jitter (up to wait/16, as here) to the wait it is sent.
  const waitMs = r.index === undefined ? 0 : (r.waitMs * 17) / 16;
  const deadline = performance.now() + r.timeoutMs + waitMs;
  const failures: string[] = [];
  for (const [i, address] of addresses.entries()) {
    const now = performance.now();
    if (now >= deadline || r.signal.aborted) break;
    // Each member gets its share of what is left (as the native ?dc= forwarding does), so one
    // stalled member cannot use the whole deadline and leave the others untried.
    const attemptDeadline = now + attemptTimeoutMs(deadline - now, waitMs, addresses.length - i);
    try {
      return await readFrom(federation!, address, r, attemptDeadline);
    } catch (err) {
      if (err instanceof ConsulError) throw err;
      failures.push(`${address}: ${(err as Error).message}`);
    }
  }
  throw new ConsulError(
    500,
    `rpc error: no member of datacenter ${r.datacenter} answered (${failures.join('; ') || 'the deadline passed'})`,
  );
}

async function readFrom(
  federation: ConsulFederation,
  address: string,
  r: RemoteRead,
  deadline: number,
): Promise<RemoteService> {
  const base =
    `/v1/namespaces/${encodeURIComponent(r.namespace)}/services/${encodeURIComponent(r.service)}/instances` +
    `?dc=${encodeURIComponent(r.datacenter)}&limit=${PAGE}` +
    (r.stale ? '&consistency=serializable' : '');
  const instances: Instance[] = [];
  let index = 0;
  let knownLeader = false;
  let next: string | null = null;
  let first = true;
  do {
    // Only the first page blocks; the rest are read at its revision (the token carries it).
    const path: string =
      next === null
        ? `${base}${r.index !== undefined && r.index > 0 ? `&index=${r.index}&wait=${Math.ceil(r.waitMs)}ms` : ''}`
        : `${base}&continue=${encodeURIComponent(next)}`;
    const res = await fetchWithin(federation, address, path, r, deadline);
    const { text } = res;
    if (res.status === 401 || res.status === 403)
      throw new ConsulError(403, `Permission denied in datacenter ${r.datacenter}: ${messageOf(text)}`);
    // A name that cannot exist there is a service it does not have: no instance, as locally.
    // Any other 400 (UNKNOWN_DATACENTER: a member with federation off) says nothing of the service.
    if (res.status === 400 && first && errorCodeOf(text) === 'INVALID_ARGUMENT')
      return { index: 1, knownLeader: res.headers.has('x-rollcall-leader'), instances };
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${messageOf(text)}`);
    const body = JSON.parse(text) as { serviceRevision?: unknown; instances?: unknown; continue?: unknown };
    if (!Array.isArray(body.instances)) throw new Error('the answer has no instances list');
    if (first) {
      index = Number(res.headers.get('x-rollcall-index') ?? body.serviceRevision ?? 0);
      knownLeader = (res.headers.get('x-rollcall-leader') ?? '') !== '';
    }
    for (const raw of body.instances) {
      const i = instanceOf(raw, r.namespace, r.service);
      if (i !== null) instances.push(i);
    }
    next = typeof body.continue === 'string' ? body.continue : null;
    first = false;
  } while (next !== null);
  return { index: Math.max(1, Number.isFinite(index) ? index : 1), knownLeader, instances };
}

/** One GET to one member, its body read, by the deadline (its timer cleared either way) or until the client goes. */
async function fetchWithin(
  federation: ConsulFederation,
  address: string,
  path: string,
  r: RemoteRead,
  deadline: number,
): Promise<{ readonly status: number; readonly headers: Headers; readonly text: string }> {
  const left = deadline - performance.now();
  if (left <= 0) throw new Error('the deadline passed');
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${Math.round(left)} ms`)), left);
  const cancel = (): void => controller.abort(new Error('the client went away'));
  r.signal.addEventListener('abort', cancel, { once: true });
  const headers: Record<string, string> = {
    accept: 'application/json',
    [HOP_HEADER]: federation.hopHeader('GET', path),
  };
  if (r.token !== undefined) headers['authorization'] = `Bearer ${r.token}`;
  try {
    const res = await fetch(`${address.replace(/\/+$/, '')}${path}`, {
      headers,
      signal: controller.signal,
      redirect: 'manual',
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  } finally {
    clearTimeout(timer);
    r.signal.removeEventListener('abort', cancel);
  }
}

/** A native API error's code (`{"error":{"code":...}}`); null when the text is not one. */
export function errorCodeOf(text: string): string | null {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : null;
  } catch {
    return null;
  }
}

/** A native API error's message, else the text itself (short). */
function messageOf(text: string): string {
  try {
    const m = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof m === 'string') return m;
  } catch {
    // Not JSON: the text is the message.
  }
  return text.slice(0, 200);
}

/** An instance of the native wire shape, as the Consul shapes read it; null when malformed. */
export function instanceOf(raw: unknown, namespace: string, service: string): Instance | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const o = raw as Record<string, unknown>;
  const { id, cluster, address, port, weight, tags, metadata, health, enabled } = o;
  if (typeof id !== 'string' || typeof address !== 'string' || typeof port !== 'number') return null;
  if (typeof health !== 'string' || !HEALTHS.has(health)) return null;
  const meta: Record<string, string> = {};
  if (typeof metadata === 'object' && metadata !== null)
    for (const [k, v] of Object.entries(metadata)) if (typeof v === 'string') meta[k] = v;
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    id,
    namespace,
    service,
    cluster: typeof cluster === 'string' ? cluster : 'default',
    address,
    port,
    weight: typeof weight === 'number' ? weight : 100,
    tags: Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [],
    metadata: meta,
    health: health as Health,
    enabled: enabled !== false,
    sessionId: typeof o['sessionId'] === 'string' ? o['sessionId'] : null,
    createRevision: num(o['createRevision']),
    modRevision: num(o['modRevision']),
    version: num(o['version']),
  };
}
