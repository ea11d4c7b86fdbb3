/**
 * What the main thread publishes for the probe listener, and how the listener judges it.
 * Pure: the worker (worker.ts) does the I/O, the main thread (publisher.ts) the writing.
 *
 * - The heartbeat: one 64-bit cell of a SharedArrayBuffer, the main thread's monotonic
 *   time in ms, stored with Atomics every few tens of ms from a timer. The timer runs only
 *   between turns of the main event loop, so the cell's age is how long the loop has not
 *   come round: a few ms on an idle node, hundreds on a busy one, for ever on a hung one.
 * - The readiness: the answer the main thread's /readyz check gave, with the time it was
 *   taken; older than the stale limit counts as not ready.
 *
 * Only type imports here: the worker loads this file and must not pull in the server.
 */
import type { HandshakeRefusal } from '../../security/handshake-refusals.js';
import type { ErrorCode } from '../errors.js';

/** A probe's answer: the status and the JSON body, the same on both ports. */
export interface ProbeAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
}

/** A /readyz answer as the main thread computed it, at `at` (monotonicMs). */
export interface PublishedReadiness extends ProbeAnswer {
  readonly at: number;
}

/** A heartbeat fresher than this is kept by default: the stall after which a leader gives up its office (ReadyLoop's stallLimitMs). */
export const DEFAULT_STALL_LIMIT_MS = 5000;
/** A published readiness older than this counts as not ready. */
export const READINESS_STALE_MS = 3000;
/** How often the main thread writes the heartbeat. */
export const HEARTBEAT_EVERY_MS = 25;
/** The pause between two readiness checks on the main thread (each may wait up to readyWaitMs). */
export const READINESS_EVERY_MS = 300;

/**
 * The monotonic clock both threads read, in ms. Not performance.now(): each worker has
 * its own time origin; process.hrtime is the process's one CLOCK_MONOTONIC.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** The heartbeat cell, over a SharedArrayBuffer of HeartbeatCell.BYTES bytes that both threads hold. */
export class HeartbeatCell {
  static readonly BYTES = 8;
  private readonly cell: BigInt64Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.cell = new BigInt64Array(buffer, 0, 1);
  }

  beat(nowMs: number): void {
    Atomics.store(this.cell, 0, BigInt(Math.round(nowMs)));
  }

  /** The time of the last beat (ms), or 0 before the first. */
  lastBeatMs(): number {
    return Number(Atomics.load(this.cell, 0));
  }
}

function errorBody(
  code: ErrorCode,
  message: string,
  extra: Record<string, unknown> = {},
): { error: Record<string, unknown> } {
  return { error: { code, message, ...extra } };
}

/**
 * /healthz: 200 `{"ok": true, "node"}` (the main port's body) while the heartbeat is at
 * most `stallLimitMs` old; else 503 STALLED with how long the main loop has not run. A busy
 * loop is alive (its heartbeat comes late, not never); only a hung one is reported.
 */
export function judgeLiveness(nodeId: string, lastBeatMs: number, nowMs: number, stallLimitMs: number): ProbeAnswer {
  const stalledMs = Math.max(0, Math.round(nowMs - lastBeatMs));
  if (stalledMs <= stallLimitMs) return { status: 200, body: { ok: true, node: nodeId } };
  return {
    status: 503,
    body: {
      ...errorBody(
        'STALLED',
        `the main event loop of this node has not run for ${stalledMs} ms (limit ${stallLimitMs} ms): it is hung`,
        { stalledMs, stallLimitMs },
      ),
      ok: false,
      node: nodeId,
    },
  };
}

/**
 * /readyz: what the main thread published while it is at most `staleMs` old; else (or
 * before the first check) 503 NOT_READY in the main port's shape, with the last known
 * fields and the reason.
 */
export function judgeReadiness(
  nodeId: string,
  published: PublishedReadiness | null,
  nowMs: number,
  staleMs: number,
): ProbeAnswer {
  if (published !== null && nowMs - published.at <= staleMs) return { status: published.status, body: published.body };
  const reason =
    published === null
      ? 'readiness has not been checked yet (the node is starting)'
      : `readiness was last checked ${Math.round(nowMs - published.at)} ms ago (limit ${staleMs} ms): the main event loop is busy or hung`;
  const last = published?.body ?? {};
  return {
    status: 503,
    body: {
      ...errorBody('NOT_READY', `not ready: ${reason}`),
      ready: false,
      node: nodeId,
      leader: last.leader ?? null,
      role: last.role ?? 'unknown',
      term: last.term ?? 0,
      commitIndex: last.commitIndex ?? 0,
      appliedIndex: last.appliedIndex ?? 0,
      lag: last.lag ?? 0,
      reasons: [reason],
    },
  };
}

/** What the probe listener reads when a request comes: the heartbeat and the latest readiness. */
export interface ProbeView {
  readonly nodeId: string;
  readonly lastBeatMs: number;
  readonly readiness: PublishedReadiness | null;
  readonly nowMs: number;
  readonly stallLimitMs: number;
  readonly readinessStaleMs: number;
}

/** The probe listener's routes: GET (and HEAD) /healthz and /readyz; anything else 404 ROUTE_NOT_FOUND as on the main port. */
export function answerProbe(method: string, url: string, view: ProbeView): ProbeAnswer {
  const path = url.split('?', 1)[0]!;
  if (method === 'GET' || method === 'HEAD') {
    if (path === '/healthz') return judgeLiveness(view.nodeId, view.lastBeatMs, view.nowMs, view.stallLimitMs);
    if (path === '/readyz') return judgeReadiness(view.nodeId, view.readiness, view.nowMs, view.readinessStaleMs);
  }
  return {
    status: 404,
    body: errorBody(
      'ROUTE_NOT_FOUND',
      `no route ${method} ${path} on the probe listener (it serves GET /healthz and GET /readyz)`,
    ),
  };
}

/** What Node's HTTP parser refused (its error code), answered in the catalogue shape as on the main port; the connection is then closed. */
export function refusedRequestAnswer(code: string | undefined): ProbeAnswer {
  if (code === 'HPE_HEADER_OVERFLOW')
    return { status: 431, body: errorBody('HEADERS_TOO_LARGE', 'the request line and headers are over the limit') };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT')
    return { status: 408, body: errorBody('REQUEST_TIMEOUT', 'the request did not arrive in time') };
  return {
    status: 400,
    body: errorBody('MALFORMED_REQUEST', `the HTTP request is malformed${code === undefined ? '' : ` (${code})`}`),
  };
}

/** Main thread -> worker. */
export type ToProbeWorker =
  | { readonly kind: 'readiness'; readonly readiness: PublishedReadiness }
  /** Reloaded TLS material (SIGHUP): for new connections; established ones keep theirs. */
  | { readonly kind: 'tls'; readonly tls: ProbeTls }
  | { readonly kind: 'close' };

/**
 * The probe listener's TLS (an https:// --probe-listen): the HTTP API's certificate, key
 * and client CA, as etcd serves an https --listen-metrics-urls with its client TLS. With a
 * CA, a prober must present a certificate that chains to it. (Buffers arrive in the worker
 * as plain Uint8Arrays.)
 */
export interface ProbeTls {
  readonly cert: Uint8Array;
  readonly key: Uint8Array;
  readonly ca: Uint8Array | null;
}

/** Worker -> main thread. */
export type FromProbeWorker =
  | { readonly kind: 'listening'; readonly port: number }
  /** A refused TLS handshake: the main thread logs (rate-limited) and counts it with the other listeners'. */
  | { readonly kind: 'tls-refused'; readonly refusal: HandshakeRefusal }
  | { readonly kind: 'listen-failed'; readonly message: string; readonly code: string | null }
  | {
      readonly kind: 'log';
      readonly level: 'debug' | 'info' | 'warn' | 'error';
      readonly msg: string;
      readonly fields: Readonly<Record<string, unknown>>;
    };

/** What the worker is started with (workerData). */
export interface ProbeWorkerData {
  readonly host: string;
  readonly port: number;
  readonly nodeId: string;
  readonly heartbeat: SharedArrayBuffer;
  readonly stallLimitMs: number;
  readonly readinessStaleMs: number;
  /** The readiness published before this worker started (a restarted worker), or null. */
  readonly readiness: PublishedReadiness | null;
  /** HTTPS with this material; null: plain HTTP. */
  readonly tls: ProbeTls | null;
}
