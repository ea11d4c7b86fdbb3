/**
 * Refused TLS handshakes on the node's listeners, told to whoever is on call: one warning
 * per refusal with the listener, the remote address and why (issue 19: the side that
 * refused said nothing, so an operator could not tell a client with an expired certificate
 * from one of another CA, or from a scanner speaking plain HTTP to a TLS port).
 *
 * The log is rate-limited like the peer port's refusals (src/log/repeat-limiter.ts): the
 * first refusal of a source for a reason on a listener in full, then one summary per
 * interval with how many more there were, so a scanner looping on the port writes one line
 * per interval, not one per connection. Every refusal is counted, by listener and reason,
 * for `rollcall_tls_handshake_failures_total`.
 *
 * Why a handshake failed comes from two places. A client certificate that does not verify
 * (another CA, expired, not yet valid) passes OpenSSL's handshake and is refused by Node
 * just after it: the socket's `authorizationError` says why (CERT_HAS_EXPIRED, ...) and the
 * error is only `ECONNRESET`. Everything else (no certificate, plain HTTP, an alert from a
 * client that refused our certificate, a timeout) is the error's own code. By the time the
 * server hears of the refusal Node has already dropped the connection and the certificate
 * with it, so the presented certificate's subject cannot be logged here; the reason names
 * what was wrong with it. Nothing secret is ever logged: no key, no certificate body.
 */
import { Socket } from 'node:net';
import type { TLSSocket, Server as TlsServer } from 'node:tls';
import type { Logger } from '../log/index.js';
import { RepeatLimiter, type RepeatSummary } from '../log/repeat-limiter.js';

/** Which listener refused: the metric's `listener` label and the log's `listener` field. */
export type TlsListenerName = 'api' | 'consul' | 'dns' | 'probe' | 'peer';

/** What a refused handshake was, in the words the log and the metric use. */
export interface HandshakeFailure {
  /**
   * A stable code: the certificate verification error (`CERT_HAS_EXPIRED`,
   * `CERT_NOT_YET_VALID`, `UNABLE_TO_VERIFY_LEAF_SIGNATURE`, ...) or the error's code
   * (`ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE`, `ERR_SSL_HTTP_REQUEST`,
   * `ERR_SSL_TLSV1_ALERT_UNKNOWN_CA`, `ERR_TLS_HANDSHAKE_TIMEOUT`, `ECONNRESET`, ...);
   * `OTHER` when there is none.
   */
  readonly reason: string;
  /** The same in words, for the log line. */
  readonly detail: string;
}

/** A refusal as the probe thread reports it to the main thread (which logs and counts it). */
export interface HandshakeRefusal extends HandshakeFailure {
  readonly listener: TlsListenerName;
  /** The remote address, without its port ('?' when the socket no longer knows it). */
  readonly source: string;
  readonly remotePort: number | null;
}

/** What each code means, where the code alone would leave an operator guessing. */
const DETAILS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'the client certificate has expired',
  CERT_NOT_YET_VALID: 'the client certificate is not valid yet',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the client certificate does not chain to the trusted CA',
  UNABLE_TO_GET_ISSUER_CERT: 'the client certificate does not chain to the trusted CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the client certificate does not chain to the trusted CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'the client certificate does not chain to the trusted CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the client certificate is self-signed',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'the client presented no certificate, and one is required',
  ERR_SSL_HTTP_REQUEST: 'plain HTTP sent to a TLS port',
  ERR_SSL_WRONG_VERSION_NUMBER: 'not TLS (or a TLS version this side does not speak)',
  ERR_TLS_HANDSHAKE_TIMEOUT: 'the handshake did not finish in time',
  ECONNRESET: 'the client closed the connection during the handshake',
};

/** A code that can be a label value: bounded, so a strange error cannot grow the metric. */
const CODE = /^[A-Z][A-Z0-9_]{0,79}$/;

/**
 * Why the handshake on `socket` failed with `error`. Pure apart from reading the socket's
 * `authorizationError`, so the peer transport (which logs its own refusals) words them alike.
 */
export function describeHandshakeFailure(
  error: Error,
  socket: Pick<TLSSocket, 'authorizationError'>,
): HandshakeFailure {
  // Set when the certificate was received and failed verification; the error is then only
  // the hang-up Node reports after dropping the connection.
  const verification = socket.authorizationError as unknown;
  if (typeof verification === 'string' && CODE.test(verification))
    return { reason: verification, detail: DETAILS[verification] ?? `the client certificate failed verification` };
  const e = error as NodeJS.ErrnoException & { reason?: unknown };
  const code = typeof e.code === 'string' && CODE.test(e.code) ? e.code : 'OTHER';
  const alert = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(.+)$/.exec(code);
  const detail =
    DETAILS[code] ??
    (alert !== null
      ? `the client sent the alert ${alert[1]!.toLowerCase().replace(/_/g, ' ')} (it refused this side's certificate or settings)`
      : typeof e.reason === 'string'
        ? e.reason
        : e.message.split('\n')[0]!);
  return { reason: code, detail };
}

/**
 * Calls `report` for every refused handshake of `server` (its `tlsClientError`), with the
 * remote address: read when the connection came in, since a socket Node has destroyed no
 * longer knows it (every refused certificate is such a case). The TLS socket's `_parent` is
 * the TCP socket it wraps (Node's own name for it, undocumented but there since Node 0.x);
 * without it the address is whatever the TLS socket still knows.
 */
export function onRefusedHandshake(
  server: TlsServer,
  listener: TlsListenerName,
  report: (refusal: HandshakeRefusal) => void,
): void {
  const addresses = new WeakMap<Socket, { source: string; remotePort: number | null }>();
  server.on('connection', (raw: Socket) => {
    addresses.set(raw, { source: raw.remoteAddress ?? '?', remotePort: raw.remotePort ?? null });
  });
  server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
    const parent = (socket as TLSSocket & { _parent?: unknown })._parent;
    const address = (parent instanceof Socket ? addresses.get(parent) : undefined) ?? {
      source: socket.remoteAddress ?? '?',
      remotePort: socket.remotePort ?? null,
    };
    report({ listener, ...address, ...describeHandshakeFailure(error, socket) });
    // Node has closed it already, except for a few errors raised mid-handshake; make sure.
    socket.destroy();
  });
}

export interface HandshakeRefusalsOptions {
  readonly logger: Logger;
  /** At most one line per listener, source and reason per this many ms (default 10 s), then a count. */
  readonly intervalMs?: number;
  /** Monotonic ms, for tests (default performance.now). */
  readonly now?: () => number;
}

interface SummaryContext {
  readonly listener: TlsListenerName;
  readonly source: string;
  readonly reason: string;
}

/** One per node: every TLS listener's refusals, logged and counted. close() reports the last counts. */
export class HandshakeRefusals {
  private readonly logger: Logger;
  private readonly limiter: RepeatLimiter<SummaryContext>;
  /** `listener reason` → refusals since start. */
  private readonly counts = new Map<string, { listener: TlsListenerName; reason: string; count: number }>();

  constructor(options: HandshakeRefusalsOptions) {
    this.logger = options.logger.child({ part: 'tls' });
    this.limiter = new RepeatLimiter<SummaryContext>({
      ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
      ...(options.now === undefined ? {} : { now: options.now }),
      onSummary: (summary) => this.logSummary(summary),
    });
  }

  /** Logs and counts every refused handshake of `server` (its `tlsClientError`), as `listener`. */
  watch(server: TlsServer, listener: TlsListenerName): void {
    onRefusedHandshake(server, listener, (refusal) => this.record(refusal));
  }

  /** One refusal (from `watch`, or reported by the probe thread): counted and logged. */
  record(refusal: HandshakeRefusal): void {
    const { listener, source, reason } = refusal;
    this.count(refusal);
    if (!this.limiter.admit(`${listener} ${reason} ${source}`, { listener, source, reason })) return;
    this.logger.warn(
      {
        listener,
        remote: `${source}:${refusal.remotePort ?? '?'}`,
        reason,
        detail: refusal.detail,
      },
      `TLS handshake refused on ${listener}: ${refusal.detail}`,
    );
  }

  /** Counts a refusal logged elsewhere (the peer transport logs its own, with its other refusals). */
  count({ listener, reason }: HandshakeRefusal): void {
    const key = `${listener} ${reason}`;
    const counted = this.counts.get(key);
    if (counted === undefined) this.counts.set(key, { listener, reason, count: 1 });
    else counted.count += 1;
  }

  /** Refusals since start by listener and reason, for the metric. */
  totals(): readonly { readonly labels: { listener: string; reason: string }; readonly value: number }[] {
    return [...this.counts.values()].map(({ listener, reason, count }) => ({
      labels: { listener, reason },
      value: count,
    }));
  }

  /** Logs the counts not reported yet; later refusals are logged in full. */
  close(): void {
    this.limiter.close();
  }

  private logSummary({ context, count, periodMs }: RepeatSummary<SummaryContext>): void {
    const seconds = Math.max(1, Math.round(periodMs / 1000));
    this.logger.warn(
      {
        listener: context.listener,
        source: context.source,
        reason: context.reason,
        refused: count,
        periodMs: Math.round(periodMs),
      },
      `refused ${count} more TLS handshake${count === 1 ? '' : 's'} on ${context.listener} from ${context.source} (${context.reason}) in the last ${seconds} s`,
    );
  }
}
