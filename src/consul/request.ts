/**
 * What every Consul handler does with a request: which namespace and datacenter it names,
 * whether its token may do this, how consistent its read is, how long it may block, and the
 * `X-Consul-*` headers its answer carries.
 *
 * Consistency (Consul's modes): the default and `?consistent` are linearizable here (a
 * read barrier, Rollcall's ReadIndex); `?stale` reads this node's applied state, works
 * without a leader, and says so in `X-Consul-Effective-Consistency`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log/index.js';
import { NodeError } from '../node/index.js';
import { AccessControl, type FailedAuthLimiter } from '../server/acl.js';
import { type Permission, type Principal, TokenAuthority } from '../server/auth.js';
import type { Lister } from '../server/listing/serve.js';
import type { NodeApi } from '../server/node-api.js';
import { blockUntilPast, type ChangeFeed } from './blocking.js';
import { parseGoDuration } from './duration.js';
import { ConsulError, fromNodeError } from './errors.js';
import { type ConsulFederation, NO_PATH } from './remote.js';
import { nameProblem } from './settings.js';

export interface ConsulContext {
  readonly node: NodeApi;
  readonly datacenter: string;
  /** Every known datacenter, nearest first (federation on); absent: just ours. */
  readonly datacenters?: () => readonly string[];
  /** The federation, for `?dc=` (remote.ts); null: federation off, every other datacenter unknown. */
  readonly federation: ConsulFederation | null;
  /** The Rollcall namespace a request without `?ns=` sees. */
  readonly namespace: string;
  readonly feed: ChangeFeed;
  /** X-Consul-LastContact, read once per event-loop turn (a change wakes many queries at once). */
  readonly leaderContact: LeaderContact;
  /** The listing index and its views, which lists are written from in slices (listing.ts). */
  readonly lister: Lister;
  /** null: auth is off. A TokenAuthority: --token-file only; an AccessControl: --acl (and break-glass tokens). */
  readonly tokens: TokenAuthority | AccessControl | null;
  /** Failed authentications per source address (--auth-failure-limit), this listener's own count. */
  readonly authFailures: FailedAuthLimiter;
  readonly logger: Logger;
  /** Deadline of a write or a read barrier. */
  readonly timeoutMs: number;
  /** A blocking query's wait when none is given, and its cap (Consul: 5 and 10 minutes). */
  readonly defaultWaitMs: number;
  readonly maxWaitMs: number;
  /** Where this Consul listener is bound (for /v1/agent/self). */
  readonly listenAddress: () => { readonly host: string; readonly port: number };
}

export type Query = Readonly<Record<string, string | string[] | undefined>>;

export function queryOf(req: FastifyRequest): Query {
  return (req.query ?? {}) as Query;
}

/** The last value of a parameter given once or more (Consul reads the first; they rarely differ). */
export function param(q: Query, name: string): string | undefined {
  const v = q[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a repeated parameter (`tag=a&tag=b`). */
export function params(q: Query, name: string): string[] {
  const v = q[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/** `?passing`, `?passing=true`, `?passing=1` are on; `?passing=false` and `=0` are off. */
export function flag(q: Query, name: string): boolean {
  const v = param(q, name);
  return v !== undefined && v !== 'false' && v !== '0';
}

/** `?ns=`, else the configured namespace. */
export function namespaceOf(ctx: ConsulContext, q: Query): string {
  const ns = param(q, 'ns');
  if (ns === undefined || ns === '') return ctx.namespace;
  const problem = nameProblem(ns);
  if (problem !== null) throw new ConsulError(400, `ns: ${problem}`);
  return ns;
}

/**
 * The other datacenter `?dc=` names, or null for this one (absent, empty, or ours). One the
 * federation does not know (or federation off) is Consul's 500 `No path to datacenter`.
 */
export function remoteDatacenter(ctx: ConsulContext, q: Query): string | null {
  const dc = param(q, 'dc');
  if (dc === undefined || dc === '' || dc === ctx.datacenter) return null;
  if (ctx.federation?.route(dc) == null) throw new ConsulError(500, NO_PATH);
  return dc;
}

/** The token, as Consul looks for it: `?token=`, then `X-Consul-Token`, then `Authorization: Bearer`. */
export function tokenOf(req: FastifyRequest, q: Query): string | undefined {
  const fromQuery = param(q, 'token');
  if (fromQuery !== undefined && fromQuery !== '') return fromQuery;
  const header = req.headers['x-consul-token'];
  if (typeof header === 'string' && header !== '') return header;
  const auth = req.headers.authorization;
  const m = auth === undefined ? null : /^Bearer +([^\s]+) *$/i.exec(auth);
  return m?.[1];
}

/**
 * Whether the request's token may use a route needing `need` in `namespace` (undefined: the
 * route is not namespaced). The same Rollcall tokens and roles as the native API. `service`:
 * the one service the route names (a token limited to service prefixes must cover it);
 * undefined: the route spans services, and such a token is refused; null: the handler holds
 * the token to its prefixes itself (requireServiceScope, serviceFilter), so only its role and
 * namespaces are checked here.
 */
export async function authorize(
  ctx: ConsulContext,
  req: FastifyRequest,
  q: Query,
  need: Exclude<Permission, 'public'>,
  namespace: string | undefined,
  service?: string | null,
): Promise<void> {
  if (ctx.tokens === null) return;
  // --auth-failure-limit, as on the native API: an address that failed too often waits, whatever it sends now.
  const blocked = ctx.authFailures.blockedFor(req.ip);
  if (blocked > 0) {
    throw new ConsulError(429, `Too many failed authentications from ${req.ip}: retry after ${blocked} s`, {
      'retry-after': String(blocked),
    });
  }
  const access = ctx.tokens instanceof AccessControl ? ctx.tokens : new AccessControl(ctx.tokens, null);
  const token = tokenOf(req, q);
  if (token === undefined) {
    throw new ConsulError(
      403,
      access.acl !== null && !access.bootstrapped()
        ? 'Permission denied: ACL not bootstrapped (POST /v1/acl/bootstrap on the Rollcall API)'
        : 'Permission denied: this node requires a token',
    );
  }
  // Replicated tokens (--acl) too: a miss waits for a read barrier before refusing (acl.ts).
  const id = await access.identify(token);
  if (!id.ok) {
    if (id.reason === 'unavailable') throw id.error;
    // A secret was tried and failed: what a guesser does, so it counts toward the limit.
    ctx.authFailures.fail(req.ip);
    throw new ConsulError(403, 'ACL not found');
  }
  // Set before a refusal too, so the audit line says whose token was refused.
  req.principal = id.principal;
  const p = id.principal;
  const decision =
    service === null && p.servicePrefixes != null
      ? TokenAuthority.authorize({ ...p, servicePrefixes: null }, need, namespace)
      : TokenAuthority.authorize(p, need, namespace, service ?? undefined);
  if (!decision.ok) throw new ConsulError(403, `Permission denied: ${decision.message}`);
}

/** Whether `p` (null: auth off) may touch `service` by its service prefixes (the native API's rule). */
function coversService(p: Principal | null, service: string): boolean {
  return p?.servicePrefixes == null || p.servicePrefixes.some((prefix) => service.startsWith(prefix));
}

/**
 * For a route authorized with its service left to the handler (authorize's `service` null):
 * 403 unless the request's token may touch `service`, the one the handler found (by an
 * instance id, a check, the registration's body).
 */
export function requireServiceScope(req: FastifyRequest, service: string): void {
  const p = req.principal;
  if (coversService(p, service)) return;
  throw new ConsulError(
    403,
    `Permission denied: token ${p!.name} is limited to services starting with ${p!.servicePrefixes!.join(', ')}, not ${service}`,
  );
}

/**
 * For a listing authorized with its service left to the handler: which services it may show
 * (those the token's service prefixes cover), or null for every one (no such limit, or auth off).
 */
export function serviceFilter(req: FastifyRequest): ((service: string) => boolean) | null {
  const p = req.principal;
  return p?.servicePrefixes == null ? null : (service) => coversService(p, service);
}

export interface ReadOptions {
  readonly stale: boolean;
  /** Consul's `index`; undefined or 0: answer at once. */
  readonly index: number | undefined;
  /** How long a blocking query may wait, jitter included. */
  readonly waitMs: number;
}

export function readOptions(ctx: ConsulContext, q: Query): ReadOptions {
  const stale = param(q, 'stale') !== undefined;
  if (stale && param(q, 'consistent') !== undefined)
    throw new ConsulError(400, 'Cannot specify ?stale with ?consistent, conflicting semantics.');
  const rawIndex = param(q, 'index');
  let index: number | undefined;
  if (rawIndex !== undefined && rawIndex !== '') {
    if (!/^[0-9]{1,20}$/.test(rawIndex)) throw new ConsulError(400, 'Invalid index');
    // Past 2^53 no revision will ever reach it: it parks for the wait, as Consul would.
    index = Math.min(Number(rawIndex), Number.MAX_SAFE_INTEGER);
  }
  const rawWait = param(q, 'wait');
  let wanted = ctx.defaultWaitMs;
  if (rawWait !== undefined && rawWait !== '') {
    const ms = parseGoDuration(rawWait);
    if (ms === null) throw new ConsulError(400, 'Invalid wait time');
    if (ms > 0) wanted = ms;
  }
  const capped = Math.min(wanted, ctx.maxWaitMs);
  // Consul's jitter: up to 1/16 more, so that many waiters do not all come back at once.
  return { stale, index, waitMs: capped + Math.random() * (capped / 16) };
}

/** Reaches the point the read is served from: a read barrier unless stale. */
export async function readPoint(
  ctx: ConsulContext,
  reply: FastifyReply,
  opts: Pick<ReadOptions, 'stale'>,
): Promise<void> {
  reply.header('x-consul-effective-consistency', opts.stale ? 'stale' : 'consistent');
  if (opts.stale) return;
  try {
    await ctx.node.readBarrier(ctx.timeoutMs);
  } catch (err) {
    if (err instanceof NodeError) throw fromNodeError(err);
    throw err;
  }
}

/**
 * How long ago this node last heard from the leader (ms; 0 on the leader or with no leader),
 * read from node.status() at most once per event-loop turn: one change wakes every query
 * parked on its service in the same turn, and status() builds the whole member table.
 */
export class LeaderContact {
  #ms: number | null = null;

  constructor(private readonly node: Pick<NodeApi, 'id' | 'leader' | 'status'>) {}

  ms(): number {
    if (this.#ms !== null) return this.#ms;
    const leader = this.node.leader;
    let ms = 0;
    if (leader !== null && leader !== this.node.id) {
      const seen = this.node.status().members.find((m) => m.id === leader)?.lastContact ?? null;
      if (seen !== null) ms = Math.max(0, Math.round(Date.now() - seen));
    }
    this.#ms = ms;
    setImmediate(() => {
      this.#ms = null;
    });
    return ms;
  }
}

/** `X-Consul-Index` (at least 1), `X-Consul-KnownLeader`, `X-Consul-LastContact` (ms). */
export function setQueryMeta(ctx: ConsulContext, reply: FastifyReply, index: number): void {
  reply.header('x-consul-index', String(Math.max(1, index)));
  reply.header('x-consul-knownleader', ctx.node.leader === null ? 'false' : 'true');
  reply.header('x-consul-lastcontact', String(ctx.leaderContact.ms()));
}

/** Aborts when the client goes away, so a parked query stops waiting for nobody. */
export function abortOnClose(reply: FastifyReply): { signal: AbortSignal; done: () => void } {
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  reply.raw.once('close', onClose);
  // A client gone before this point (during the hooks or the read barrier) closed the response
  // already: its 'close' will not come again, and the query would park for its whole wait.
  if (reply.raw.destroyed) abort.abort();
  return { signal: abort.signal, done: () => reply.raw.off('close', onClose) };
}

/** Logs what a handler could not answer (once per request, no token). */
export function logFailure(logger: Logger, req: FastifyRequest, err: unknown): void {
  logger.error({ err, method: req.method, route: req.routeOptions.url }, 'Consul API: unexpected error');
}

/**
 * The read half of every query endpoint: the read point, then (with `?index=`) the wait
 * until `indexNow()` is past the index or the wait ends, woken by changes to `key`; sets the
 * `X-Consul-*` headers and returns the index answered with.
 */
export async function blockingRead(
  ctx: ConsulContext,
  reply: FastifyReply,
  q: Query,
  key: string,
  indexNow: () => number,
): Promise<number> {
  const opts = readOptions(ctx, q);
  await readPoint(ctx, reply, opts);
  const { signal, done } = abortOnClose(reply);
  let index: number;
  try {
    index = await blockUntilPast(ctx.feed, key, indexNow, opts.index, opts.waitMs, signal);
  } finally {
    done();
  }
  setQueryMeta(ctx, reply, index);
  return index;
}

/** `?filter=` (Consul's expression language) is not served: refused rather than ignored. */
export function refuseFilter(q: Query): void {
  if (param(q, 'filter') !== undefined)
    throw new ConsulError(400, 'filter: Rollcall does not serve filter expressions');
}
