/**
 * One HTTP attempt against one node, on `node:http`/`node:https` with agents the client
 * owns, so `close()` can destroy every socket it ever opened (the global fetch pool belongs
 * to the process, not to us).
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';

export interface Agents {
  readonly http: http.Agent;
  readonly https: https.Agent;
}

/**
 * TLS for `https://` endpoints, as PEM contents (not file names), like Node's own options:
 * `ca` the CA(s) the nodes' certificates must chain to (default: the system's), `cert` and
 * `key` a client certificate for nodes that require one (--tls-client-ca).
 */
export interface ClientTls {
  readonly ca?: string | Buffer | readonly (string | Buffer)[];
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

export function createAgents(keepAlive: boolean, tls: ClientTls = {}): Agents {
  const opts = { keepAlive, maxSockets: keepAlive ? 64 : Infinity, scheduling: 'lifo' as const };
  const secure = {
    ...(tls.ca === undefined
      ? {}
      : { ca: typeof tls.ca === 'string' || Buffer.isBuffer(tls.ca) ? tls.ca : [...tls.ca] }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
  };
  return { http: new http.Agent(opts), https: new https.Agent({ ...opts, ...secure }) };
}

export function destroyAgents(a: Agents): void {
  a.http.destroy();
  a.https.destroy();
}

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/** Why an attempt failed before a status arrived (the request may or may not have been processed). */
export class AttemptError extends Error {
  constructor(
    readonly kind: 'timeout' | 'network' | 'aborted',
    message: string,
    /** True once request bytes were handed to the socket (a write may have been applied). */
    readonly sent: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface AttemptOptions {
  readonly method: string;
  readonly url: URL;
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

function start(
  agents: Agents,
  o: AttemptOptions,
  onResponse: (res: IncomingMessage) => void,
  fail: (e: AttemptError) => void,
): http.ClientRequest {
  const mod = o.url.protocol === 'https:' ? https : http;
  const agent = o.url.protocol === 'https:' ? agents.https : agents.http;
  const headers: Record<string, string> = { ...o.headers };
  if (o.body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(o.body));
  }
  const req = mod.request(o.url, { method: o.method, headers, agent }, onResponse);
  let sent = false;
  req.on('finish', () => {
    sent = true;
  });
  req.on('error', (err: Error & { code?: string }) => {
    const kind = (req as { _rcKind?: AttemptError['kind'] })._rcKind ?? 'network';
    fail(
      new AttemptError(
        kind,
        kind === 'timeout'
          ? `no answer within ${o.timeoutMs} ms`
          : kind === 'aborted'
            ? 'aborted'
            : (err.code ?? err.message),
        sent || kind !== 'network',
        { cause: err },
      ),
    );
  });
  if (o.body !== undefined) req.end(o.body);
  else req.end();
  return req;
}

function abortWith(req: http.ClientRequest, kind: AttemptError['kind']): void {
  (req as { _rcKind?: AttemptError['kind'] })._rcKind = kind;
  req.destroy(new Error(kind));
}

/** Sends one request and reads the whole body, within `timeoutMs` for the lot. */
export function attempt(agents: Agents, o: AttemptOptions): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const req = start(
      agents,
      o,
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          finish(() =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            }),
          ),
        );
        res.on('error', (err) =>
          finish(() => reject(new AttemptError('network', `response cut: ${err.message}`, true, { cause: err }))),
        );
      },
      (e) => finish(() => reject(e)),
    );
    const timer = setTimeout(() => abortWith(req, 'timeout'), o.timeoutMs);
    const onAbort = () => abortWith(req, 'aborted');
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface OpenStream {
  readonly res: IncomingMessage;
  /** Ends the stream and its socket. Idempotent. */
  destroy(): void;
}

/**
 * Opens a long-lived response (SSE). `timeoutMs` bounds the wait for the status line only;
 * the caller watches the stream's liveness itself.
 */
export function openStream(agents: Agents, o: AttemptOptions): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      fn();
      return true;
    };
    const req = start(
      agents,
      o,
      (res) => {
        if (
          !settle(() =>
            resolve({
              res,
              destroy: () => {
                res.destroy();
                req.destroy();
              },
            }),
          )
        )
          res.destroy();
      },
      (e) => settle(() => reject(e)),
    );
    const timer = setTimeout(() => abortWith(req, 'timeout'), o.timeoutMs);
    const onAbort = () => abortWith(req, 'aborted');
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
