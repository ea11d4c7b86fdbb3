/**
 * `NodePool`: the client's connections to the cluster's nodes, and how it talks to them:
 * failover between nodes, leader hints, retries within a deadline. (Not the peer transport
 * of src/transport/, which carries Raft messages between nodes.)
 *
 * Every call has one deadline (`requestTimeoutMs`) and every attempt its own shorter one
 * (`attemptTimeoutMs`), so a node that accepts connections but never answers (SIGSTOP,
 * partition) costs one attempt, not the whole call. Nodes that fail are passed over for a
 * growing while but still tried when nothing else is left.
 *
 * Which node: writes go to the leader when its address is known (a follower would only
 * forward it, one hop more), reads stay on the last node that answered. Every response
 * names the answering node (`x-rollcall-node`) and the leader (`x-rollcall-leader`); the
 * leader's HTTP address comes from `GET /v1/cluster` when no configured endpoint is it.
 *
 * Retries: a node that cannot be reached, a 502/503 (no leader yet) and a 504 (the write's
 * outcome is unknown) are retried on the next node. Writes carry the caller's exactly-once
 * ids (`x-rollcall-client-id`, `x-rollcall-seq`) unchanged on every attempt, so however many
 * attempts reach the leader, the write applies once. Any other 4xx is the caller's answer.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  ApiError,
  ClientClosedError,
  DatacenterUnreachableError,
  TimeoutError,
  UnavailableError,
  UnknownDatacenterError,
  UnsupportedError,
} from './errors.js';
import {
  type Agents,
  AttemptError,
  attempt,
  type ClientTls,
  createAgents,
  destroyAgents,
  type OpenStream,
  openStream,
} from './http.js';
import type { ClientLogger } from './types.js';

export interface NodePoolOptions {
  readonly endpoints: readonly string[];
  readonly token?: string | undefined;
  readonly requestTimeoutMs: number;
  readonly attemptTimeoutMs: number;
  readonly random: () => number;
  readonly logger?: ClientLogger | undefined;
  /** Learn other members' HTTP addresses from `GET /v1/cluster` (default true). */
  readonly followMembers: boolean;
  /** CA and client certificate for `https://` nodes. */
  readonly tls?: ClientTls | undefined;
  /** The datacenter calls and streams name (`?dc=`) unless they name their own; none: the nodes' own. */
  readonly datacenter?: string | undefined;
}

export interface CallOptions {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH';
  readonly path: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly body?: unknown;
  /** `write` prefers the leader; the outcome of a write cut short is reported as unknown. */
  readonly kind: 'read' | 'write';
  readonly exactlyOnce?: { readonly clientId: string; readonly seq: number };
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number | undefined;
  /** Overrides the pool's deadline for one attempt (a blocking query waits longer than an attempt). */
  readonly attemptTimeoutMs?: number | undefined;
  /** Statuses handed back as results instead of thrown as ApiError (e.g. 404 for a get). */
  readonly accept?: readonly number[];
  /** Sent as `?dc=` (the pool's `datacenter` when left out): served by that datacenter, through the node. */
  readonly dc?: string | undefined;
}

export interface CallResult<T> {
  readonly status: number;
  readonly body: T;
  readonly headers: IncomingHttpHeaders;
  /** The answering node's id (`x-rollcall-node`). */
  readonly node: string | null;
}

export interface StreamResult extends OpenStream {
  readonly node: string | null;
  readonly url: string;
}

interface Endpoint {
  readonly base: string;
  /** The node id, once a response named it. */
  id: string | null;
  failures: number;
  downUntil: number;
  /** Configured by the user (kept forever) or learned from the membership. */
  readonly seed: boolean;
}

const RETRY_STATUS = new Set([502, 503, 504]);

export class NodePool {
  readonly #o: NodePoolOptions;
  readonly #endpoints: Endpoint[];
  readonly #agents: Agents;
  /** Long-lived streams get their own agents so they never starve requests of sockets. */
  readonly #streamAgents: Agents;
  readonly #closing = new AbortController();
  #sticky: Endpoint | undefined;
  #leaderId: string | null = null;
  #membersFetchedAt = 0;
  #membersFetch: Promise<void> | null = null;
  readonly #allDownListeners = new Set<() => void>();

  constructor(options: NodePoolOptions) {
    if (options.endpoints.length === 0) throw new TypeError('at least one endpoint is required');
    this.#o = options;
    this.#endpoints = [];
    for (const e of options.endpoints) this.#addEndpoint(e, true);
    this.#agents = createAgents(true, options.tls);
    this.#streamAgents = createAgents(false, options.tls);
  }

  /** The leader's id as last reported by any node. */
  get leader(): string | null {
    return this.#leaderId;
  }

  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /** Aborted when the pool closes; long waits elsewhere in the SDK listen to it. */
  get closeSignal(): AbortSignal {
    return this.#closing.signal;
  }

  /** Every node URL known now (configured first). */
  endpoints(): string[] {
    return this.#endpoints.map((e) => e.base);
  }

  async call<T>(o: CallOptions): Promise<CallResult<T>> {
    if (this.closed) throw new ClientClosedError();
    const deadline = Date.now() + (o.timeoutMs ?? this.#o.requestTimeoutMs);
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    const headers = this.#headers(o.headers, o.exactlyOnce);
    let mayHaveApplied = false;
    const reasons = new Map<string, string>();
    let retryAfterMs = 0;
    // The longest Retry-After of a node that shed the request (OVERLOADED): honoured in full.
    let overloadedMs = 0;
    for (let round = 0; ; round++) {
      const queue = this.#order(o.kind);
      const tried = new Set<Endpoint>();
      for (let target = queue.shift(); target !== undefined; target = queue.shift()) {
        tried.add(target);
        const left = deadline - Date.now();
        if (left <= 0) break;
        if (this.closed) throw new ClientClosedError();
        let raw;
        try {
          raw = await attempt(this.#agents, {
            method: o.method,
            url: this.#url(target, o.path, o.query, o.dc ?? this.#o.datacenter),
            headers,
            ...(body === undefined ? {} : { body }),
            timeoutMs: Math.min(o.attemptTimeoutMs ?? this.#o.attemptTimeoutMs, left),
            signal: this.#closing.signal,
          });
        } catch (err) {
          if (this.closed) throw new ClientClosedError();
          if (!(err instanceof AttemptError)) throw err;
          this.#markFailed(target);
          if (err.sent) mayHaveApplied = true;
          reasons.set(target.base, err.kind === 'timeout' ? err.message : `unreachable (${err.message})`);
          this.#o.logger?.debug(
            { node: target.base, path: o.path, reason: err.message },
            'attempt failed; trying the next node',
          );
          continue;
        }
        const node = this.#observe(target, raw.headers);
        const parsed = parseBody(raw.text);
        if (raw.status < 400 || o.accept?.includes(raw.status)) {
          this.#markOk(target);
          this.#sticky = target;
          return { status: raw.status, body: parsed as T, headers: raw.headers, node };
        }
        const error = errorOf(parsed);
        if (!RETRY_STATUS.has(raw.status)) {
          this.#markOk(target);
          if (raw.status === 404 && error.code === 'ROUTE_NOT_FOUND') {
            throw new UnsupportedError(
              `node ${node ?? target.base} has no route ${o.method} ${o.path} (an older server than this client)`,
            );
          }
          throw apiError(raw.status, error, node, o.dc ?? this.#o.datacenter);
        }
        // Another datacenter's every member failed to answer the node in time: asking another
        // node of ours would wait for the same members again. The caller decides.
        if (error.code === 'DATACENTER_UNREACHABLE') {
          this.#markOk(target);
          throw apiError(raw.status, error, node, o.dc ?? this.#o.datacenter);
        }
        // 502/503: this node could not serve it now (no leader, shutting down). 504, and 503
        // PROPOSAL_DROPPED: a write was proposed but not known to commit; the retry carries
        // the same ids.
        if (raw.status === 504 || error.code === 'PROPOSAL_DROPPED') mayHaveApplied = true;
        reasons.set(target.base, `${raw.status} ${error.code ?? ''} ${error.message ?? ''}`.trim());
        retryAfterMs = Math.max(retryAfterMs, Number(raw.headers['retry-after'] ?? 0) * 1000);
        if (error.code === 'OVERLOADED')
          overloadedMs = Math.max(overloadedMs, Number(raw.headers['retry-after'] ?? 1) * 1000);
        const leader = typeof error.leader === 'string' ? this.#byId(error.leader) : undefined;
        if (leader && !tried.has(leader) && o.kind === 'write') {
          const i = queue.indexOf(leader);
          if (i >= 0) queue.splice(i, 1);
          queue.unshift(leader);
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      const backoff = Math.min(1000, 50 * 2 ** round) * (0.5 + this.#o.random());
      // An overloaded node asked for a pause: wait all of it, plus up to half again at
      // random, so the clients it shed do not all come back at the same instant. Other
      // 503s (an election) are short: Retry-After only caps the backoff there.
      const pause =
        overloadedMs > 0
          ? overloadedMs * (1 + 0.5 * this.#o.random())
          : retryAfterMs > 0
            ? Math.min(retryAfterMs, backoff * 2)
            : backoff;
      await this.#sleep(Math.min(left, pause));
      retryAfterMs = 0;
      overloadedMs = 0;
    }
    const detail = [...reasons].map(([n, r]) => `${n}: ${r}`).join('; ') || 'no attempt finished';
    const ms = o.timeoutMs ?? this.#o.requestTimeoutMs;
    if (o.kind === 'write' && mayHaveApplied) {
      throw new TimeoutError(
        `${o.method} ${o.path} did not complete within ${ms} ms and may have been applied (${detail})`,
        true,
      );
    }
    throw new UnavailableError(`no node could serve ${o.method} ${o.path} within ${ms} ms (${detail})`);
  }

  /**
   * Opens a stream (SSE) on the best node, trying each known node once. `avoid` goes last:
   * the node a stream just lost is the least likely to answer.
   */
  async stream(
    path: string,
    query: CallOptions['query'],
    avoid: string | null,
    headersTimeoutMs: number,
    dc?: string,
  ): Promise<StreamResult> {
    const datacenter = dc ?? this.#o.datacenter;
    if (this.closed) throw new ClientClosedError();
    const order = this.#order('read');
    order.sort((a, b) => Number(a.base === avoid) - Number(b.base === avoid));
    const reasons: string[] = [];
    for (const ep of order) {
      if (this.closed) throw new ClientClosedError();
      try {
        const s = await openStream(this.#streamAgents, {
          method: 'GET',
          url: this.#url(ep, path, query, datacenter),
          headers: this.#headers({ accept: 'text/event-stream' }),
          timeoutMs: headersTimeoutMs,
          signal: this.#closing.signal,
        });
        const node = this.#observe(ep, s.res.headers);
        const status = s.res.statusCode ?? 0;
        if (status === 200) {
          this.#markOk(ep);
          return { ...s, node, url: ep.base };
        }
        const text = await readAll(s.res, headersTimeoutMs).finally(() => s.destroy());
        const error = errorOf(parseBody(text));
        if (!RETRY_STATUS.has(status) || error.code === 'DATACENTER_UNREACHABLE') {
          this.#markOk(ep);
          throw apiError(status, error, node, datacenter);
        }
        reasons.push(`${ep.base}: ${status} ${error.code ?? ''}`);
      } catch (err) {
        if (this.closed) throw new ClientClosedError();
        if (!(err instanceof AttemptError)) throw err;
        this.#markFailed(ep);
        reasons.push(`${ep.base}: ${err.message}`);
      }
    }
    throw new UnavailableError(`no node would open ${path} (${reasons.join('; ')})`);
  }

  /** True when every known node failed its last attempt and is resting. */
  allDown(): boolean {
    const now = Date.now();
    return this.#endpoints.every((e) => e.downUntil > now);
  }

  /** Calls `listener` whenever a failure leaves every known node resting; returns an unsubscribe. */
  onAllDown(listener: () => void): () => void {
    this.#allDownListeners.add(listener);
    return () => this.#allDownListeners.delete(listener);
  }

  /** One attempt at one node, no retry: for health probes. */
  async probe(
    base: string,
    path: string,
    timeoutMs: number,
  ): Promise<{ status: number; body: unknown; node: string | null; latencyMs: number }> {
    if (this.closed) throw new ClientClosedError();
    const ep = this.#endpoints.find((e) => e.base === base) ?? {
      base,
      id: null,
      failures: 0,
      downUntil: 0,
      seed: false,
    };
    const started = performance.now();
    const raw = await attempt(this.#agents, {
      method: 'GET',
      url: this.#url(ep, path, undefined),
      headers: this.#headers(),
      timeoutMs,
      signal: this.#closing.signal,
    });
    return {
      status: raw.status,
      body: parseBody(raw.text),
      node: header(raw.headers, 'x-rollcall-node'),
      latencyMs: performance.now() - started,
    };
  }

  /** A node's stream broke: pass it over for a while. */
  reportStreamFailure(base: string): void {
    const ep = this.#endpoints.find((e) => e.base === base);
    if (ep) this.#markFailed(ep);
  }

  /** Interruptible by close(); resolves early (without throwing) when closed. */
  sleep(ms: number): Promise<void> {
    return this.#sleep(ms);
  }

  close(): void {
    if (this.closed) return;
    this.#closing.abort();
    destroyAgents(this.#agents);
    destroyAgents(this.#streamAgents);
  }

  // ---- internals ----------------------------------------------------------------------

  #headers(extra?: Readonly<Record<string, string>>, once?: CallOptions['exactlyOnce']): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.#o.token !== undefined) h.authorization = `Bearer ${this.#o.token}`;
    if (once) {
      h['x-rollcall-client-id'] = once.clientId;
      h['x-rollcall-seq'] = String(once.seq);
    }
    return h;
  }

  #url(ep: Endpoint, path: string, query: CallOptions['query'], dc?: string): URL {
    const url = new URL(path, ep.base);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    if (dc !== undefined) url.searchParams.set('dc', dc);
    return url;
  }

  /** Up nodes first (leader first for writes, then the sticky one), then the ones resting. */
  #order(kind: 'read' | 'write'): Endpoint[] {
    const now = Date.now();
    const leader = this.#leaderId === null ? undefined : this.#byId(this.#leaderId);
    const rank = (e: Endpoint): number => {
      let r = e.downUntil > now ? 100 + e.failures : 10;
      if (kind === 'write' && e === leader) r -= 5;
      if (e === this.#sticky) r -= 2;
      return r;
    };
    return [...this.#endpoints].sort((a, b) => rank(a) - rank(b));
  }

  #markFailed(ep: Endpoint): void {
    ep.failures++;
    const now = Date.now();
    ep.downUntil = now + Math.min(5000, 250 * 2 ** Math.min(ep.failures - 1, 5));
    if (this.#sticky === ep) this.#sticky = undefined;
    if (this.#endpoints.every((e) => e.downUntil > now)) for (const l of [...this.#allDownListeners]) l();
  }

  #markOk(ep: Endpoint): void {
    ep.failures = 0;
    ep.downUntil = 0;
  }

  #byId(id: string): Endpoint | undefined {
    return this.#endpoints.find((e) => e.id === id);
  }

  #observe(ep: Endpoint, headers: IncomingHttpHeaders): string | null {
    const node = header(headers, 'x-rollcall-node');
    if (node !== null && ep.id !== node) {
      ep.id = node;
      // A learned address that turns out to be a configured node's is dropped.
      const dup = this.#endpoints.find((e) => e !== ep && e.id === node && !e.seed);
      if (dup) this.#endpoints.splice(this.#endpoints.indexOf(dup), 1);
    }
    if (node !== null) this.#leaderId = header(headers, 'x-rollcall-leader');
    if (this.#leaderId !== null && !this.#byId(this.#leaderId)) this.#maybeFetchMembers(ep);
    return node;
  }

  #maybeFetchMembers(via: Endpoint): void {
    if (!this.#o.followMembers || this.#membersFetch || Date.now() - this.#membersFetchedAt < 2000 || this.closed)
      return;
    this.#membersFetchedAt = Date.now();
    this.#membersFetch = attempt(this.#agents, {
      method: 'GET',
      url: this.#url(via, '/v1/cluster', undefined),
      headers: this.#headers(),
      timeoutMs: this.#o.attemptTimeoutMs,
      signal: this.#closing.signal,
    })
      .then((raw) => {
        if (raw.status !== 200) return;
        const body = parseBody(raw.text) as { members?: { id?: unknown; http?: unknown }[] } | null;
        for (const m of body?.members ?? []) {
          if (typeof m.id !== 'string' || typeof m.http !== 'string' || this.#byId(m.id)) continue;
          const ep = this.#addEndpoint(m.http, false);
          if (ep && ep.id === null) ep.id = m.id;
        }
      })
      .catch(() => undefined)
      .finally(() => {
        this.#membersFetch = null;
      });
  }

  #addEndpoint(raw: string, seed: boolean): Endpoint | undefined {
    let base: string;
    try {
      const u = new URL(raw.includes('://') ? raw : `http://${raw}`);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      base = `${u.protocol}//${u.host}`;
    } catch {
      if (seed) throw new TypeError(`not an http(s) endpoint: ${JSON.stringify(raw)}`);
      return undefined;
    }
    const existing = this.#endpoints.find((e) => e.base === base);
    if (existing) return existing;
    const ep: Endpoint = { base, id: null, failures: 0, downUntil: 0, seed };
    this.#endpoints.push(ep);
    return ep;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed || ms <= 0) return resolve();
      const signal = this.#closing.signal;
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

function header(h: IncomingHttpHeaders, name: string): string | null {
  const v = h[name];
  return typeof v === 'string' && v.length > 0 ? v : null;
}

function parseBody(text: string): unknown {
  if (text.length === 0) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

interface ErrorFields {
  code?: string;
  message?: string;
  field?: string;
  leader?: unknown;
  [k: string]: unknown;
}

/** The error a refusal becomes: the federation's two codes as their own classes, the rest as ApiError. */
function apiError(
  status: number,
  error: ErrorFields,
  node: string | null,
  dc: string | undefined,
): ApiError | UnavailableError {
  const message = error.message ?? `HTTP ${status}`;
  const datacenter = typeof error.datacenter === 'string' ? error.datacenter : (dc ?? '');
  if (error.code === 'UNKNOWN_DATACENTER' && status === 400)
    return new UnknownDatacenterError(datacenter, message, error, node);
  if (error.code === 'DATACENTER_UNREACHABLE') return new DatacenterUnreachableError(datacenter, message, node);
  return new ApiError(status, error.code ?? `HTTP_${status}`, message, error.field, error, node);
}

function errorOf(body: unknown): ErrorFields {
  if (body && typeof body === 'object' && 'error' in body) {
    const e = (body as { error: unknown }).error;
    if (e && typeof e === 'object') return e as ErrorFields;
  }
  return typeof body === 'string' && body.length > 0 ? { message: body.slice(0, 200) } : {};
}

function readAll(res: NodeJS.ReadableStream, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const t = setTimeout(() => resolve(Buffer.concat(chunks).toString('utf8')), timeoutMs);
    res.on('data', (c: Buffer) => chunks.push(c));
    const end = () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    res.on('end', end);
    res.on('error', end);
  });
}
