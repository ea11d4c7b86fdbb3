/**
 * One request forwarded to another datacenter (`?dc=`): tried on its members in turn, each
 * attempt with its own share of the request's deadline, the way Consul's RPC forwarding
 * bounds each try and moves on to the next server.
 *
 * - Order: the route's (src/federation/engine.ts `route`): live members with the leader
 *   first (a write lands where it is proposed, with no extra hop), then suspect ones.
 * - Budget: an attempt may wait for the answer's headers `waitMs` (a blocking query's
 *   `wait`, held by the remote on purpose) plus an equal share of what is left of the base
 *   budget among the members not tried yet, at least `MIN_ATTEMPT_MS`. A member that fails
 *   fast (connection refused) leaves its share to the next; one that hangs costs only its
 *   share, so the others are always tried before the deadline.
 * - Safety: after a failure that may have reached the remote (a timeout or a reset once the
 *   request was sent), only a request that is safe to repeat goes on to the next member: a
 *   read, or a write carrying an exactly-once id (`x-rollcall-client-id`), which the remote
 *   cluster applies once however often it arrives. Any other write gets the whole budget in
 *   one attempt, and if that fails this way the outcome is `ambiguous` (504 TIMEOUT: the
 *   caller must read before retrying). A refused connection never reached anyone: the next
 *   member is tried for every request.
 * - A remote 503 that says nothing was done (no leader there, shedding load, not ready) is
 *   answered by the next member if there is time; the last such answer is relayed when none
 *   does better. `SHUTTING_DOWN` only for a request safe to repeat: a stopping member also
 *   fails writes it had proposed, which may still commit; any other write gets its answer.
 *   Such an answer's body (read for its code) must come within the attempt's time: a member
 *   that sends the headers and then nothing fails as one that hangs (the next member, or
 *   `ambiguous` for a write that cannot be repeated), never past the deadline.
 * - Transport: node:http(s) through the FederationHttpClient the caller passes (the
 *   FederationHost's: --federation-tls-* CAs and client certificate, reloaded on SIGHUP;
 *   http-client.ts says why not fetch). The answer is handed back as a web `Response`, its
 *   body streaming from the connection. A connection that never got as far as sending the
 *   request (refused, unreachable, a TLS handshake either side refused) counts as not sent.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { FederationHttpClient } from './http-client.js';

/** The least time one attempt gets, however many members are left. */
export const MIN_ATTEMPT_MS = 250;

/** Remote error codes meaning "nothing was done here; another member may do it". */
const TRY_ELSEWHERE: ReadonlySet<string> = new Set(['NO_LEADER', 'OVERLOADED', 'NOT_READY']);
/**
 * A stopping member also fails the writes it had already proposed (src/node/node.ts `close`),
 * which may still commit: only a request safe to repeat goes on to the next member.
 */
const TRY_ELSEWHERE_IF_REPEATABLE: ReadonlySet<string> = new Set(['SHUTTING_DOWN']);

/** Without a client of the caller's: nothing pooled, so nothing is left open. */
let unpooled: FederationHttpClient | null = null;

/** Connection errors that prove the request never reached the member. */
const NOT_SENT: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

export interface ForwardRequest {
  readonly method: string;
  /** Path and query, as sent to the member. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  /** The base budget (the request timeout), ms. */
  readonly budgetMs: number;
  /** What a blocking query's `wait` adds to every attempt (the remote holds the answer that long). */
  readonly waitMs: number;
  /** Ends every attempt (the client went away). */
  readonly signal?: AbortSignal;
  /**
   * Whether an answer that is not a 2xx also goes on to the next member, from its status and
   * catalogue code (beside the 503s above): for a read whose caller knows which answers say
   * nothing about what it asked (the Consul API's `?dc=` reads, src/consul/remote.ts).
   */
  readonly askNextOn?: (status: number, code: string | null) => boolean;
  /**
   * The connections to use (the FederationHost's `client`: --federation-tls-*). Absent: a
   * connection per attempt with the system's CAs and no client certificate.
   */
  readonly client?: FederationHttpClient;
}

export type ForwardOutcome =
  /** A member answered; its body is still to be read (it may be a stream). */
  | { readonly kind: 'answer'; readonly response: Response; readonly address: string }
  /** No member answered in time, or every one was refused before the request left. */
  | { readonly kind: 'unreachable'; readonly failures: readonly string[] }
  /** A request that is not safe to repeat may have reached `address`: its outcome is unknown. */
  | { readonly kind: 'ambiguous'; readonly failures: readonly string[]; readonly address: string };

/** A read, or a write the remote cluster applies exactly once whatever the retries. */
export function safeToRepeat(method: string, headers: Readonly<Record<string, string>>): boolean {
  const m = method.toUpperCase();
  return m === 'GET' || m === 'HEAD' || m === 'OPTIONS' || (headers['x-rollcall-client-id'] ?? '') !== '';
}

/**
 * How long the next attempt may wait for the answer's headers: `waitMs` plus an equal share
 * of the base budget left among `attemptsLeft`, never past the deadline.
 */
export function attemptTimeoutMs(leftMs: number, waitMs: number, attemptsLeft: number): number {
  if (leftMs <= 0) return 0;
  const base = Math.max(0, leftMs - waitMs);
  const share = Math.max(MIN_ATTEMPT_MS, base / Math.max(1, attemptsLeft));
  return Math.min(leftMs, waitMs + share);
}

/** Sends `req` to the members at `addresses` in turn (see the file comment). */
export async function forwardToMembers(
  addresses: readonly string[],
  req: ForwardRequest,
  now: () => number = () => performance.now(),
): Promise<ForwardOutcome> {
  const deadline = now() + req.budgetMs + req.waitMs;
  const repeatable = safeToRepeat(req.method, req.headers);
  const failures: string[] = [];
  let tryElsewhere: { response: Response; address: string } | null = null;
  for (let i = 0; i < addresses.length; i++) {
    const address = addresses[i]!;
    const left = deadline - now();
    if (left <= 0 || req.signal?.aborted) break;
    // A write that cannot be repeated gets the whole budget: it has no second attempt to share with.
    const timeoutMs = repeatable ? attemptTimeoutMs(left, req.waitMs, addresses.length - i) : left;
    const attemptEnd = now() + timeoutMs;
    const attempt = await attemptOnce(address, req, timeoutMs);
    if (attempt.kind === 'answer') {
      const status = attempt.response.status;
      const asked = req.askNextOn !== undefined && (status < 200 || status > 299);
      // The body is read within what is left of the attempt's time: a member that sends the
      // headers and then nothing fails like one that hangs, not past the deadline.
      const code = status === 503 || asked ? await errorCodeOf(attempt, attemptEnd - now()) : null;
      if (code === STALLED) {
        failures.push(`${address}: ${status}, then no body within ${Math.round(timeoutMs)} ms`);
        if (!repeatable) return { kind: 'ambiguous', failures, address };
        continue;
      }
      const elsewhere =
        (code !== null && (TRY_ELSEWHERE.has(code) || (repeatable && TRY_ELSEWHERE_IF_REPEATABLE.has(code)))) ||
        (asked && req.askNextOn!(status, code));
      if (!elsewhere) return attempt;
      failures.push(`${address}: ${status} ${code ?? ''}`.trimEnd());
      tryElsewhere = attempt;
      continue;
    }
    failures.push(`${address}: ${attempt.message}`);
    if (!attempt.notSent && !repeatable) return { kind: 'ambiguous', failures, address };
  }
  if (tryElsewhere !== null) return { kind: 'answer', ...tryElsewhere };
  if (failures.length === 0) failures.push('the deadline passed');
  return { kind: 'unreachable', failures };
}

type Attempt =
  | { readonly kind: 'answer'; response: Response; readonly address: string }
  | { readonly kind: 'failed'; readonly message: string; readonly notSent: boolean };

async function attemptOnce(address: string, req: ForwardRequest, timeoutMs: number): Promise<Attempt> {
  let url: URL;
  try {
    url = new URL(`${address.replace(/\/+$/, '')}${req.url}`);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(url.protocol);
  } catch {
    return { kind: 'failed', message: 'not an http(s) URL', notSent: true };
  }
  unpooled ??= new FederationHttpClient(null, false);
  const client = req.client ?? unpooled;
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`no answer within ${Math.round(timeoutMs)} ms`)),
    Math.max(1, timeoutMs),
  );
  const onAbort = () => controller.abort(new Error('the client went away'));
  req.signal?.addEventListener('abort', onAbort, { once: true });
  const body = req.body === undefined ? undefined : typeof req.body === 'string' ? Buffer.from(req.body) : req.body;
  // The answer is relayed as it comes (fetch used to decompress it): ask for it uncompressed.
  const headers: Record<string, string | number> = { ...req.headers, 'accept-encoding': 'identity' };
  if (body !== undefined) headers['content-length'] = body.byteLength;
  try {
    const attempt = await new Promise<Attempt>((resolve) => {
      /** The connection was made (for https: the handshake done): from now on the request may reach the member. */
      let connected = false;
      let sent: ClientRequest;
      try {
        sent = client.request('forward', url, { method: req.method, headers, signal: controller.signal }, (res) => {
          try {
            resolve({ kind: 'answer', response: webResponse(req.method, res), address });
          } catch (err) {
            res.destroy();
            resolve({ kind: 'failed', message: `unusable answer: ${(err as Error).message}`, notSent: false });
          }
        });
      } catch (err) {
        resolve({ kind: 'failed', message: (err as Error).message, notSent: true });
        return;
      }
      sent.once('socket', (socket) => {
        if (sent.reusedSocket) connected = true;
        else socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => (connected = true));
      });
      sent.once('error', (err: NodeJS.ErrnoException) => {
        const code = typeof err.code === 'string' ? err.code : '';
        const why = controller.signal.aborted ? (controller.signal.reason as Error).message : err.message;
        resolve({
          kind: 'failed',
          message: code === '' || code === 'ABORT_ERR' ? why : `${code}: ${why}`,
          notSent: !connected || NOT_SENT.has(code) || HANDSHAKE_REFUSED.test(code),
        });
      });
      sent.end(body);
    });
    // The body outlives the attempt (a watch streams on): the client going away still ends it.
    if (attempt.kind === 'answer' && req.signal !== undefined)
      req.signal.addEventListener('abort', () => controller.abort(new Error('the client went away')), { once: true });
    return attempt;
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * A TLS alert from the member about our certificate (TLS 1.3 ends the handshake on our side
 * before the member has checked it, so this comes after the request was written): the member
 * refused the connection and never read the request.
 */
const HANDSHAKE_REFUSED =
  /^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|HANDSHAKE_FAILURE|ACCESS_DENIED)$/;

/** The body as text, '' if it ends early; `STALLED` (the body cancelled) if it is not whole within `withinMs`. */
async function textWithin(res: Response, withinMs: number): Promise<string | typeof STALLED> {
  const reader = res.body?.getReader();
  if (reader === undefined) return '';
  let stalled = false;
  const timer = setTimeout(
    () => {
      stalled = true;
      // Cancelling ends the pending read and closes the connection.
      reader.cancel(new Error('no body in time')).catch(() => undefined);
    },
    Math.max(1, withinMs),
  );
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
  } catch {
    return stalled ? STALLED : '';
  } finally {
    clearTimeout(timer);
  }
  return stalled ? STALLED : Buffer.concat(chunks).toString('utf8');
}

/** Statuses whose answer has no body (the Response constructor refuses one). */
const NULL_BODY: ReadonlySet<number> = new Set([101, 204, 205, 304]);

/** The member's answer as a web Response, its body streaming from the connection (cancelling it closes the connection). */
function webResponse(method: string, res: IncomingMessage): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  const status = res.statusCode ?? 0;
  const noBody = NULL_BODY.has(status) || method.toUpperCase() === 'HEAD';
  if (noBody) res.resume();
  const body = noBody ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
  return new Response(body, { status, statusText: res.statusMessage ?? '', headers });
}

/** What `errorCodeOf` answers when the body did not come in time. */
const STALLED: unique symbol = Symbol('stalled');

/**
 * The catalogue code of an error answer, reading its (small) body within `withinMs` (else
 * `STALLED`, and the connection is closed); the answer keeps a body that can still be relayed.
 */
async function errorCodeOf(attempt: { response: Response }, withinMs: number): Promise<string | null | typeof STALLED> {
  const res = attempt.response;
  const text = await textWithin(res, withinMs);
  if (text === STALLED) return STALLED;
  attempt.response = new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : null;
  } catch {
    return null;
  }
}
