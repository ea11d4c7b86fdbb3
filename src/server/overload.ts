/**
 * Load shedding: under more load than the node can serve, answer new work at once with
 * 503 OVERLOADED and `Retry-After` rather than let every request wait (and a probe time
 * out, and an orchestrator kill a healthy node). Two signals, either one sheds:
 *
 * - the event loop lags: a timer that should fire every `sampleMs` fires late; past
 *   `maxLagMs` the node sheds until the lag is back under half of it (hysteresis, so it
 *   does not flap at the threshold);
 * - too many requests are already in flight on this node: past `maxInflight` (the
 *   Kubernetes API server's max-requests-inflight; watches and other long-lived streams
 *   are not counted), or past `maxPendingWork` proposals, forwarded requests and reads
 *   waiting inside the node.
 *
 * Never shed: `/healthz` and `/readyz` (the probes must see a busy node as alive), and
 * keepalives (dropping them under load would expire live sessions: the registry's worst
 * failure). Everything else — reads, writes, new watches — may be.
 */
import type { FastifyInstance } from 'fastify';
import { sendError } from './errors.js';

export interface LoadShedderOptions {
  /** Shed while the event loop lags more than this (ms); 0 disables this signal. */
  readonly maxLagMs: number;
  /** Shed while more than this much work waits in the node; 0 disables this signal. */
  readonly maxPendingWork: number;
  /** Shed while more than this many requests are in flight (streams not counted); 0 disables this signal. */
  readonly maxInflight: number;
  /** What `Retry-After` says, in seconds. */
  readonly retryAfterSeconds: number;
  /**
   * How often the lag is sampled (default 50 ms, the Raft tick). Shedding starts within the
   * turn whatever the rate (check() reads how overdue the timer is); the rate only bounds how
   * soon a lag that has ended is seen to end, and a 20 ms timer cost an idle node ~6 ms of
   * CPU a second, on the same two cores as the work it protects.
   */
  readonly sampleMs?: number;
}

export interface LoadSource {
  /** Proposals, forwarded requests and queued reads waiting in the node now. */
  pendingWork(): number;
}

export type ShedReason =
  | { readonly kind: 'lag'; readonly lagMs: number }
  | { readonly kind: 'inflight'; readonly inflight: number }
  | { readonly kind: 'pending'; readonly pending: number };

export class LoadShedder {
  private lagMs = 0;
  private lagging = false;
  private timer: NodeJS.Timeout | null = null;
  private expectedAt = 0;
  private shedCount = 0;
  /** Requests admitted and not yet answered (streams excepted). */
  inflight = 0;

  constructor(
    readonly options: LoadShedderOptions,
    private readonly source: LoadSource,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Starts sampling the event loop's lag. */
  start(): void {
    if (this.timer !== null || this.options.maxLagMs <= 0) return;
    const every = this.options.sampleMs ?? 50;
    this.expectedAt = this.now() + every;
    this.timer = setInterval(() => {
      const t = this.now();
      this.observeLag(Math.max(0, t - this.expectedAt));
      this.expectedAt = t + every;
    }, every);
    this.timer.unref();
  }

  /** One lag sample (ms): how late the sampling timer fired. */
  observeLag(lagMs: number): void {
    this.lagMs = lagMs;
    const max = this.options.maxLagMs;
    if (max <= 0) return;
    if (!this.lagging && lagMs > max) this.lagging = true;
    else if (this.lagging && lagMs < max / 2) this.lagging = false;
  }

  /** Why new work should be refused now, or null to take it. */
  check(): ShedReason | null {
    // The sampling timer only fires between turns of the event loop, but the costly case is
    // one long turn: hundreds of sockets readable at once, each request admitted in turn.
    // How overdue the timer is now is the lag so far, so shedding starts within the turn.
    const max = this.options.maxLagMs;
    if (this.timer !== null && max > 0) {
      const overdueMs = this.now() - this.expectedAt;
      if (overdueMs > max) {
        this.lagging = true;
        this.lagMs = Math.max(this.lagMs, overdueMs);
      }
    }
    if (this.lagging) return { kind: 'lag', lagMs: Math.round(this.lagMs) };
    if (this.options.maxInflight > 0 && this.inflight >= this.options.maxInflight)
      return { kind: 'inflight', inflight: this.inflight };
    const maxPending = this.options.maxPendingWork;
    if (maxPending > 0) {
      const pending = this.source.pendingWork();
      if (pending > maxPending) return { kind: 'pending', pending };
    }
    return null;
  }

  /** Requests answered 503 OVERLOADED so far. */
  get shed(): number {
    return this.shedCount;
  }

  countShed(): void {
    this.shedCount++;
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/** Routes never shed: the probes, and keepalives (see the header). */
export function neverShed(method: string, url: string): boolean {
  // Checked on every request: look at the prefix before cutting the path out of the URL.
  if (url.startsWith('/healthz') || url.startsWith('/readyz')) {
    const path = pathOf(url);
    return path === '/healthz' || path === '/readyz';
  }
  return method === 'PUT' && url.startsWith('/v1/sessions/') && /^\/v1\/sessions\/[^/]+\/keepalive$/.test(pathOf(url));
}

/** Long-lived streams: not counted in flight (they would fill the limit and stay). */
function isStream(url: string): boolean {
  const path = pathOf(url);
  return path === '/v1/watch' || path.endsWith('/stream');
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

const COUNTED = Symbol('rollcall.inflight');

/** The hooks: shed at onRequest, before the body is read or any work is done; count what is in flight. */
export function registerLoadShedding(app: FastifyInstance, shedder: LoadShedder): void {
  const done = (req: { [COUNTED]?: boolean }): void => {
    if (req[COUNTED] !== true) return;
    req[COUNTED] = false;
    shedder.inflight--;
  };
  app.addHook('onRequest', (req, reply, next) => {
    if (!neverShed(req.method, req.url)) {
      const why = shedder.check();
      if (why !== null) {
        shedder.countShed();
        reply.header('retry-after', String(shedder.options.retryAfterSeconds));
        sendError(
          reply,
          'OVERLOADED',
          `this node is overloaded: ${describe(why, shedder.options)}; retry after ${shedder.options.retryAfterSeconds} s, or on another node`,
        );
        return;
      }
    }
    if (!isStream(req.url)) {
      (req as { [COUNTED]?: boolean })[COUNTED] = true;
      shedder.inflight++;
    }
    next();
  });
  app.addHook('onResponse', (req, _reply, next) => {
    done(req as { [COUNTED]?: boolean });
    next();
  });
  app.addHook('onRequestAbort', (req, next) => {
    done(req as { [COUNTED]?: boolean });
    next();
  });
}

function describe(why: ShedReason, o: LoadShedderOptions): string {
  switch (why.kind) {
    case 'lag':
      return `its event loop lags ${why.lagMs} ms (limit ${o.maxLagMs} ms, --max-event-loop-lag-ms)`;
    case 'inflight':
      return `${why.inflight} requests are in flight (limit ${o.maxInflight}, --max-inflight-requests)`;
    case 'pending':
      return `${why.pending} requests wait in it (limit ${o.maxPendingWork}, --max-pending-work)`;
  }
}
