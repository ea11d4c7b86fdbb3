/**
 * JSON over HTTP for the linearizability workload and its nemesis, with the one
 * distinction the history needs: did the request certainly not reach the server
 * (connection refused), or is its fate unknown (timeout, reset, no answer)?
 */

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: any;
}

export type HttpFailure = 'refused' | 'timeout' | 'lost';

export class HttpError extends Error {
  constructor(
    readonly kind: HttpFailure,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** Loopback only: the harness never talks to anything else. */
function checkLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]')
    throw new Error(`lin harness: refusing to send to ${url} (loopback only)`);
}

export async function request(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 2000,
): Promise<Reply> {
  checkLoopback(url);
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw classify(err, method, url);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    throw classify(err, method, url);
  }
  let parsed: unknown = text;
  try {
    parsed = text.length > 0 ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

function classify(err: unknown, method: string, url: string): HttpError {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  const what = `${method} ${url}`;
  if (e.name === 'TimeoutError' || e.name === 'AbortError')
    return new HttpError('timeout', `${what}: no answer in time`);
  const code = e.cause?.code;
  if (code === 'ECONNREFUSED') return new HttpError('refused', `${what}: connection refused`);
  return new HttpError('lost', `${what}: ${code ?? e.cause?.message ?? e.message ?? String(err)}`);
}

/** A pause that ends early when `signal` aborts. For backoff between retries only. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
