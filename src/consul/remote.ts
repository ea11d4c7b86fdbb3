/**
 * `?dc=` on the Consul API (issue 18): a read in another datacenter is asked of a live
 * member of that datacenter, as a Consul agent forwards it to a server there. This node
 * keeps nothing of the other datacenter's registry: the member answers with a native
 * listing, read the way the request asked (linearizable, or serializable for `?stale`), and
 * this node writes the Consul answer from it with the same shapes as a local one.
 *
 * - Which member, and how long: src/federation/forward.ts `forwardToMembers`, the one path
 *   every `?dc=` takes (live members, the leader first; each attempt its share of the
 *   deadline: the read's timeout plus its wait), over the host's connections (its
 *   --federation-tls-* certificates). The request names the datacenter
 *   (`?dc=<dc>`), so a member that is not in it refuses instead of answering for its own; it
 *   is signed as a federation hop (`x-rollcall-federation-hop`, as the native API's
 *   forwarding does), with the caller's Consul token as its bearer token: the other
 *   datacenter checks it against its own tokens. A member's answer that says nothing about
 *   the read (it is not in that datacenter, federation is off there, it failed) sends the
 *   read on to the next member.
 * - One service (this file): the native `GET /v1/namespaces/{ns}/services/{svc}/instances`,
 *   blocking there with the client's `index` and `wait`; `X-Consul-Index` is the service's
 *   revision in that datacenter (its own revision numbers). A namespace's lists:
 *   remote-namespace.ts.
 * - Failures, as Consul answers them: a datacenter the federation does not know (or
 *   federation off) is 500 `No path to datacenter`; no member answering within the deadline
 *   is 500 `rpc error: ...`; a token refused there is 403 with that datacenter's reason.
 */

import { forwardToMembers } from '../federation/forward.js';
import { HOP_HEADER } from '../federation/host.js';
import type { FederationHttpClient } from '../federation/http-client.js';
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
  /**
   * The connections to other datacenters (--federation-tls-*: its CAs, this node's client
   * certificate), the host's as every `?dc=` uses them; absent: the system's CAs, no certificate.
   */
  readonly client?: FederationHttpClient;
}

/** What every read in another datacenter is given. */
export interface RemoteAsk {
  readonly datacenter: string;
  readonly namespace: string;
  readonly stale: boolean;
  /** Consul's `index`; undefined or 0: answer at once. */
  readonly index: number | undefined;
  /** How long a blocking query may wait, jitter included. */
  readonly waitMs: number;
  readonly token: string | undefined;
  /** Deadline of one read, the wait aside. */
  readonly timeoutMs: number;
  /** The client went away: stop asking. */
  readonly signal: AbortSignal;
}

export interface RemoteRead extends RemoteAsk {
  readonly service: string;
}

/** What a remote read answers with: the instances, and the `X-Consul-*` values they come with. */
export interface RemoteAnswer {
  /** `X-Consul-Index`, in that datacenter's revisions (at least 1). */
  readonly index: number;
  readonly knownLeader: boolean;
  /** The enabled instances read, in the listing's order (service, cluster, id). */
  readonly instances: readonly Instance[];
}

export type RemoteService = RemoteAnswer;

export const NO_PATH = 'No path to datacenter';
/** Which datacenter answered, as the native API's forwarding says it (src/server/routes/federation.ts). */
export const DATACENTER_HEADER = 'x-rollcall-datacenter';

/** Page size asked for; pages are followed, so a larger list is still answered whole. */
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

/** A blocking query: an index to wait past. */
export function isBlocking(r: Pick<RemoteAsk, 'index'>): r is { readonly index: number } {
  return r.index !== undefined && r.index > 0;
}

/**
 * The time a remote read may take, and what ends it: the client going away, or its deadline.
 * Every request of the read is given `signal`, so nothing it opened (a page's body, a watch
 * stream) outlives it; `close` ends them all.
 */
export class RemoteScope {
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #client: AbortSignal;
  readonly #onClientGone = (): void => this.#controller.abort(new Error('the client went away'));
  readonly deadline: number;

  constructor(client: AbortSignal, budgetMs: number) {
    this.#client = client;
    this.deadline = performance.now() + budgetMs;
    this.#timer = setTimeout(
      () => this.#controller.abort(new Error(`no answer within ${Math.round(budgetMs)} ms`)),
      Math.max(1, budgetMs),
    );
    if (client.aborted) this.#onClientGone();
    else client.addEventListener('abort', this.#onClientGone, { once: true });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Milliseconds left before the deadline (0 when it has passed). */
  left(): number {
    return Math.max(0, this.deadline - performance.now());
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#client.removeEventListener('abort', this.#onClientGone);
    this.#controller.abort(new Error('the read is over'));
  }
}

/** A member's answer: its status, headers and (unless a stream) its body. */
export interface MemberAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly address: string;
}

/**
 * A GET of `path` to the first of `addresses` that answers (forwardToMembers), signed as a
 * federation hop with the caller's token. Its body is left to read; `signal` (a RemoteScope's)
 * ends it. No member answering is 500 `rpc error`.
 */
export async function askMembers(
  federation: ConsulFederation,
  addresses: readonly string[],
  path: string,
  r: Pick<RemoteAsk, 'datacenter' | 'token'>,
  budget: { readonly budgetMs: number; readonly waitMs: number; readonly signal: AbortSignal },
): Promise<MemberAnswer & { readonly response: Response }> {
  const headers: Record<string, string> = {
    accept: 'application/json',
    [HOP_HEADER]: federation.hopHeader('GET', path),
  };
  if (r.token !== undefined) headers['authorization'] = `Bearer ${r.token}`;
  const outcome = await forwardToMembers(addresses, {
    method: 'GET',
    url: path,
    headers,
    budgetMs: budget.budgetMs,
    waitMs: budget.waitMs,
    signal: budget.signal,
    askNextOn: answersAnotherQuestion,
    ...(federation.client === undefined ? {} : { client: federation.client }),
  });
  if (outcome.kind !== 'answer')
    throw new ConsulError(
      500,
      `rpc error: no member of datacenter ${r.datacenter} answered (${outcome.failures.join('; ')})`,
    );
  const { response, address } = outcome;
  return { status: response.status, headers: response.headers, address, response };
}

/**
 * A member's answer that says nothing about the read, so the next member is asked: anything
 * but a refused token (the same there on every member) and a name that cannot exist there.
 */
function answersAnotherQuestion(status: number, code: string | null): boolean {
  return !(status === 401 || status === 403 || (status === 400 && code === 'INVALID_ARGUMENT'));
}

/** The Consul error for a member's answer other than 200: a refused token is 403, anything else the RPC failing. */
export function failureOf(datacenter: string, status: number, text: string): ConsulError {
  if (status === 401 || status === 403)
    return new ConsulError(403, `Permission denied in datacenter ${datacenter}: ${messageOf(text)}`);
  return new ConsulError(
    500,
    `rpc error: no member of datacenter ${datacenter} answered (HTTP ${status}: ${messageOf(text)})`,
  );
}

/** A listing read whole: its instances, the first page's headers, and its `revision`. */
export interface Listing {
  readonly first: MemberAnswer;
  /** The first page's body, without `instances` (its `revision`, `serviceRevision`). */
  readonly head: Readonly<Record<string, unknown>>;
  readonly instances: Instance[];
}

/**
 * Every page of a native listing: the first (`firstPath`, which may block there) from the
 * first member that answers, the rest from that same member (a continue token is read at
 * its revision, which another member may no longer hold). A first page other than 200 is
 * returned as it came (`refused`), for the caller to read; a later one fails the read.
 */
export async function readListing(
  federation: ConsulFederation,
  addresses: readonly string[],
  r: Pick<RemoteAsk, 'datacenter' | 'namespace' | 'token'> & { readonly service?: string },
  paths: { readonly first: string; readonly next: (token: string) => string; readonly waitMs: number },
  scope: RemoteScope,
): Promise<
  | { readonly kind: 'listing'; readonly listing: Listing }
  | { readonly kind: 'refused'; readonly status: number; readonly headers: Headers; readonly text: string }
> {
  const first = await askMembers(federation, addresses, paths.first, r, {
    budgetMs: Math.max(0, scope.left() - paths.waitMs),
    waitMs: paths.waitMs,
    signal: scope.signal,
  });
  let text = await bodyOf(first.response);
  if (first.status !== 200) return { kind: 'refused', status: first.status, headers: first.headers, text };
  const instances: Instance[] = [];
  let head: Record<string, unknown> = {};
  for (let page = 0; ; page++) {
    const body = parseBody(text);
    if (page === 0) {
      const { instances: _, continue: __, ...rest } = body;
      head = rest;
    }
    for (const raw of body.instances) {
      const i = instanceOf(raw, r.namespace, r.service);
      if (i !== null) instances.push(i);
    }
    if (typeof body.continue !== 'string') break;
    const next = await askMembers(federation, [first.address], paths.next(body.continue), r, {
      budgetMs: scope.left(),
      waitMs: 0,
      signal: scope.signal,
    });
    text = await bodyOf(next.response);
    if (next.status !== 200) throw failureOf(r.datacenter, next.status, text);
  }
  return { kind: 'listing', listing: { first, head, instances } };
}

/** The body as text; a member that stops sending is ended by the scope's signal (its deadline). */
async function bodyOf(res: Response): Promise<string> {
  try {
    return await res.text();
  } catch (err) {
    throw new ConsulError(500, `rpc error: the answer ended early (${(err as Error).message})`);
  }
}

function parseBody(
  text: string,
): { readonly instances: unknown[]; readonly continue?: unknown } & Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ConsulError(500, 'rpc error: the answer is not JSON');
  }
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { instances?: unknown }).instances))
    throw new ConsulError(500, 'rpc error: the answer has no instances list');
  return body as { instances: unknown[] };
}

/** Whether the answer's node knew a leader (it names one in `x-rollcall-leader`). */
export function knownLeaderOf(headers: Headers): boolean {
  return (headers.get('x-rollcall-leader') ?? '') !== '';
}

/** Reads one service of another datacenter from the first of its members that answers. */
export async function readRemoteService(federation: ConsulFederation | null, r: RemoteRead): Promise<RemoteService> {
  const addresses = remoteMembers(federation, r.datacenter);
  // The member adds its own jitter (up to wait/16, as here) to the wait it is sent.
  const waitMs = isBlocking(r) ? (r.waitMs * 17) / 16 : 0;
  const base =
    `/v1/namespaces/${encodeURIComponent(r.namespace)}/services/${encodeURIComponent(r.service)}/instances` +
    `?dc=${encodeURIComponent(r.datacenter)}&limit=${PAGE}` +
    (r.stale ? '&consistency=serializable' : '');
  const scope = new RemoteScope(r.signal, r.timeoutMs + waitMs);
  try {
    const read = await readListing(
      federation!,
      addresses,
      r,
      {
        // Only the first page blocks; the rest are read at its revision (the token carries it).
        first: `${base}${isBlocking(r) ? `&index=${r.index}&wait=${Math.ceil(r.waitMs)}ms` : ''}`,
        next: (token) => `${base}&continue=${encodeURIComponent(token)}`,
        waitMs,
      },
      scope,
    );
    if (read.kind === 'refused') {
      // A name that cannot exist there is a service it does not have: no instance, as locally.
      if (read.status === 400 && errorCodeOf(read.text) === 'INVALID_ARGUMENT')
        return { index: 1, knownLeader: knownLeaderOf(read.headers), instances: [] };
      throw failureOf(r.datacenter, read.status, read.text);
    }
    const { first, head, instances } = read.listing;
    const index = Number(first.headers.get('x-rollcall-index') ?? head['serviceRevision'] ?? 0);
    return {
      index: Math.max(1, Number.isFinite(index) ? index : 1),
      knownLeader: knownLeaderOf(first.headers),
      instances,
    };
  } finally {
    scope.close();
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

/**
 * An instance of the native wire shape, as the Consul shapes read it; null when malformed.
 * Its service is the one it names, else `service` (a service's own listing).
 */
export function instanceOf(raw: unknown, namespace: string, service?: string): Instance | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const o = raw as Record<string, unknown>;
  const { id, cluster, address, port, weight, tags, metadata, health, enabled } = o;
  const named = typeof o['service'] === 'string' ? o['service'] : service;
  if (named === undefined) return null;
  if (typeof id !== 'string' || typeof address !== 'string' || typeof port !== 'number') return null;
  if (typeof health !== 'string' || !HEALTHS.has(health)) return null;
  const meta: Record<string, string> = {};
  if (typeof metadata === 'object' && metadata !== null)
    for (const [k, v] of Object.entries(metadata)) if (typeof v === 'string') meta[k] = v;
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return {
    id,
    namespace,
    service: named,
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
