/**
 * The load generator both systems get: N keep-alive HTTP/1.1 connections to 127.0.0.1,
 * one request in flight per connection (closed loop), optionally paced to a total rate.
 * Bounded by time and by count; every request either completes, fails or times out.
 *
 * Latency is measured from writing the request to the last byte of the response.
 *
 * Over TLS (a target with `tls`), each connection does its handshake once and then
 * carries every request of the run, as a real client's keep-alive pool does: the run
 * measures encrypted requests, not handshakes. `connectionsOpened` in the result says how
 * many handshakes there were.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { buildRequest, type RequestSpec, ResponseParser } from './http1.js';
import { Samples, type Summary } from './stats.js';

/** What a client trusts and presents over TLS: PEM contents, read once. */
export interface ClientTls {
  /** The CA the server's certificate must chain to. */
  readonly ca: Buffer;
  /** A client certificate and key, for servers that require one (mutual TLS). */
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface Target {
  readonly host: string;
  readonly port: number;
  /** Speak TLS to it (the URL was https://). */
  readonly tls?: ClientTls;
}

/** The target of a node URL; an https:// URL needs `tls` (the CA to trust, a client certificate). */
export function targetOf(url: string, tls?: ClientTls): Target {
  const u = new URL(url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost')
    throw new Error(`refusing to load a non-loopback address: ${url}`);
  if (u.protocol === 'https:') {
    if (!tls) throw new Error(`${url}: an https target needs the client TLS options`);
    return { host: '127.0.0.1', port: Number(u.port), tls };
  }
  return { host: '127.0.0.1', port: Number(u.port) };
}

/** A TCP or TLS socket to the target, and the event that says requests may be written. */
function dial(target: Target): { socket: Socket; readyEvent: 'connect' | 'secureConnect' } {
  if (!target.tls)
    return { socket: connect({ host: target.host, port: target.port, noDelay: true }), readyEvent: 'connect' };
  const socket = tlsConnect({
    host: target.host,
    port: target.port,
    ca: target.tls.ca,
    ...(target.tls.cert ? { cert: target.tls.cert } : {}),
    ...(target.tls.key ? { key: target.tls.key } : {}),
  });
  socket.setNoDelay(true);
  return { socket, readyEvent: 'secureConnect' };
}

export interface LoadOptions {
  /** Connection i goes to targets[i % targets.length]. */
  readonly targets: readonly Target[];
  readonly connections: number;
  /** Stop issuing after this long. */
  readonly durationMs: number;
  /** Stop issuing after this many requests. */
  readonly maxRequests?: number;
  /** Pace issuing to this many requests per second in total. */
  readonly ratePerSec?: number;
  /** A request unanswered this long is abandoned (the connection is dropped) and counted as a timeout. */
  readonly timeoutMs?: number;
  /** Raw bytes of request number `seq` (0-based) on connection `conn`. */
  readonly request: (seq: number, conn: number) => Buffer;
  readonly isOk?: (status: number) => boolean;
  /** Judges a response by its body too (the body is collected only when this is given). */
  readonly inspect?: (status: number, body: Buffer, seq: number, startedAt: number) => boolean;
  /** Pause after a failed request before the connection issues again (default 0; 20 ms for fault runs). */
  readonly errorBackoffMs?: number;
  /** Keep one record per request (for the failover analysis). */
  readonly record?: boolean;
  /** Called about once a second. */
  readonly onTick?: (p: { readonly elapsedMs: number; readonly ok: number; readonly errors: number }) => void;
  readonly signal?: AbortSignal;
  /** Checked before every request: true stops issuing (in-flight requests still finish). */
  readonly until?: () => boolean;
  /**
   * Open every connection (over TLS: finish its handshake) before the clock starts, as a
   * client whose pool is already warm; duration, rate and records count from then. A
   * connection that is not up within `timeoutMs` does not hold the start back.
   */
  readonly connectFirst?: boolean;
  /** Called when issuing starts (after the connections are up, with `connectFirst`). */
  readonly onStart?: () => void;
}

export interface RequestRecord {
  readonly start: number;
  readonly end: number;
  readonly ok: boolean;
  readonly status: number;
  readonly conn: number;
}

export interface LoadResult {
  readonly sent: number;
  readonly ok: number;
  readonly errors: number;
  readonly timeouts: number;
  /** Connections (TLS handshakes, over TLS) opened during the run, reconnects included. */
  readonly connectionsOpened: number;
  /** From the first request to the last answer. */
  readonly elapsedMs: number;
  /** Successful requests per second over elapsedMs. */
  readonly throughput: number;
  /** Latency of successful requests, ms. */
  readonly latency: Summary;
  readonly statuses: Readonly<Record<string, number>>;
  readonly records: readonly RequestRecord[];
  /** Wall-clock origin (performance.now()) of the run; records are relative to it. */
  readonly t0: number;
}

interface Conn {
  readonly index: number;
  readonly target: Target;
  socket: Socket | null;
  parser: ResponseParser | null;
  inflightSince: number;
  inflightSeq: number;
  connected: boolean;
  waiting: NodeJS.Timeout | null;
  body: Buffer[];
}

export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const isOk = opts.isOk ?? ((s: number) => s >= 200 && s < 300);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxRequests = opts.maxRequests ?? Number.POSITIVE_INFINITY;
  const backoff = opts.errorBackoffMs ?? 0;
  const lat = new Samples(64 * 1024);
  const records: RequestRecord[] = [];
  const statuses: Record<string, number> = {};
  let sent = 0;
  let ok = 0;
  let errors = 0;
  let timeouts = 0;
  let opened = 0;
  let lastEnd = 0;
  let stopping = false;
  let finished = false;
  let t0 = performance.now();
  let stopAt = t0 + opts.durationMs;
  let started = false;
  const conns: Conn[] = [];

  return new Promise<LoadResult>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      for (const c of conns) {
        if (c.inflightSince >= 0 && now - c.inflightSince > timeoutMs) {
          timeouts++;
          fail(c, 0, now);
          c.socket?.destroy();
        }
      }
      if (!started && now - t0 > timeoutMs) start();
      if (started && (now >= stopAt || opts.until?.())) stopping = true;
      maybeFinish();
    }, 50);
    const progress = opts.onTick
      ? setInterval(() => opts.onTick!({ elapsedMs: performance.now() - t0, ok, errors }), 1000)
      : null;
    const onAbort = () => {
      stopping = true;
      for (const c of conns) c.socket?.destroy();
      maybeFinish(true);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    function maybeFinish(force = false): void {
      if (finished) return;
      if (!stopping) return;
      if (!force && conns.some((c) => c.inflightSince >= 0)) return;
      finished = true;
      clearInterval(tick);
      if (progress) clearInterval(progress);
      opts.signal?.removeEventListener('abort', onAbort);
      for (const c of conns) {
        if (c.waiting) clearTimeout(c.waiting);
        c.socket?.destroy();
      }
      const elapsedMs = Math.max(1, (lastEnd || performance.now()) - t0);
      resolve({
        sent,
        ok,
        errors,
        timeouts,
        connectionsOpened: opened,
        elapsedMs,
        throughput: (ok * 1000) / elapsedMs,
        latency: lat.summary(),
        statuses,
        records,
        t0,
      });
    }

    function done(c: Conn, status: number): void {
      const now = performance.now();
      const start = c.inflightSince;
      c.inflightSince = -1;
      lastEnd = now;
      statuses[status] = (statuses[status] ?? 0) + 1;
      let good: boolean;
      if (opts.inspect) {
        good = opts.inspect(status, c.body.length === 1 ? c.body[0]! : Buffer.concat(c.body), c.inflightSeq, start);
        c.body = [];
      } else good = isOk(status);
      if (good) {
        ok++;
        lat.push(now - start);
      } else errors++;
      if (opts.record) records.push({ start: start - t0, end: now - t0, ok: good, status, conn: c.index });
      if (good || backoff === 0) issue(c);
      else later(c, backoff);
    }

    function fail(c: Conn, status: number, now: number): void {
      if (c.inflightSince < 0) return;
      const start = c.inflightSince;
      c.inflightSince = -1;
      lastEnd = now;
      errors++;
      statuses[status === 0 ? 'conn' : status] = (statuses[status === 0 ? 'conn' : status] ?? 0) + 1;
      if (opts.record) records.push({ start: start - t0, end: now - t0, ok: false, status, conn: c.index });
    }

    function later(c: Conn, ms: number): void {
      if (c.waiting) return;
      c.waiting = setTimeout(() => {
        c.waiting = null;
        issue(c);
      }, ms);
    }

    function open(c: Conn): void {
      const { socket, readyEvent } = dial(c.target);
      opened++;
      c.socket = socket;
      c.connected = false;
      c.body = [];
      c.parser = new ResponseParser({
        onComplete: (status) => done(c, status),
        ...(opts.inspect ? { onBody: (piece: Buffer) => void c.body.push(Buffer.from(piece)) } : {}),
      });
      socket.on(readyEvent, () => {
        c.connected = true;
        if (started) issue(c);
        else if (conns.length === opts.connections && conns.every((x) => x.connected)) start();
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          c.parser?.feed(chunk);
        } catch {
          fail(c, 0, performance.now());
          socket.destroy();
        }
      });
      socket.on('error', () => {
        /* 'close' follows */
      });
      socket.on('close', () => {
        if (c.socket !== socket) return;
        c.socket = null;
        c.connected = false;
        fail(c, 0, performance.now());
        if (stopping) {
          maybeFinish();
          return;
        }
        later(c, Math.max(backoff, 10));
      });
    }

    /** The clock starts: every connection that is up issues its first request. */
    function start(): void {
      if (started) return;
      started = true;
      t0 = performance.now();
      stopAt = t0 + opts.durationMs;
      opts.onStart?.();
      for (const c of conns) issue(c);
    }

    function issue(c: Conn): void {
      if (finished) return;
      const now = performance.now();
      if (started && (now >= stopAt || sent >= maxRequests || opts.until?.())) stopping = true;
      if (stopping) {
        maybeFinish();
        return;
      }
      if (!c.socket) {
        open(c);
        return;
      }
      if (!started || !c.connected || c.inflightSince >= 0) return;
      if (c.parser?.closeAfter) {
        c.socket.destroy();
        return;
      }
      if (opts.ratePerSec) {
        const due = t0 + (sent * 1000) / opts.ratePerSec;
        if (due > now + 1) {
          later(c, due - now);
          return;
        }
      }
      const seq = sent++;
      c.inflightSince = performance.now();
      c.inflightSeq = seq;
      c.socket.write(opts.request(seq, c.index));
    }

    for (let i = 0; i < opts.connections; i++) {
      const c: Conn = {
        index: i,
        target: opts.targets[i % opts.targets.length]!,
        socket: null,
        parser: null,
        inflightSince: -1,
        inflightSeq: -1,
        connected: false,
        waiting: null,
        body: [],
      };
      conns.push(c);
      open(c);
    }
    if (!opts.connectFirst) start();
  });
}

export interface StreamHandle {
  close(): void;
  readonly status: number;
}

export interface StreamOptions {
  readonly target: Target;
  readonly request: RequestSpec | Buffer;
  readonly onHead?: (status: number) => void;
  readonly onBody: (piece: Buffer) => void;
  readonly onEnd?: (err: Error | null) => void;
}

/** One long-lived streaming request (SSE, etcd watch) on its own connection. */
export function openStream(opts: StreamOptions): StreamHandle {
  const { socket, readyEvent } = dial(opts.target);
  let status = 0;
  let ended = false;
  const end = (err: Error | null) => {
    if (ended) return;
    ended = true;
    opts.onEnd?.(err);
  };
  const parser = new ResponseParser({
    onHead: (s) => {
      status = s;
      opts.onHead?.(s);
    },
    onBody: (piece) => opts.onBody(piece),
    onComplete: () => {
      end(null);
      socket.destroy();
    },
  });
  socket.on(readyEvent, () => socket.write(Buffer.isBuffer(opts.request) ? opts.request : buildRequest(opts.request)));
  socket.on('data', (chunk: Buffer) => {
    try {
      parser.feed(chunk);
    } catch (err) {
      end(err as Error);
      socket.destroy();
    }
  });
  socket.on('error', (err) => end(err));
  socket.on('close', () => end(null));
  return {
    close: () => {
      ended = true;
      socket.destroy();
    },
    get status() {
      return status;
    },
  };
}
