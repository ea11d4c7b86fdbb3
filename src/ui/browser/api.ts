// Talking to the node that served this page: JSON requests and event streams.
// Auth is off in a dev cluster. With --acl or --token-file, a person pastes a token: it is kept
// for this tab only (sessionStorage: never in the URL, never logged) and sent as
// `Authorization: Bearer` on every request. The server reads a token from that header only, and
// EventSource cannot send headers, so with a token the streams go through fetch.
import type { ErrorReply } from './wire.js';

const TOKEN_KEY = 'rollcall.token';

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** A request refused for its token: 401 (none, or not valid), 403 (not allowed) or 429 (too many failures). */
export interface AuthProblem {
  readonly status: number;
  /** The server's message (the catalogue error's), naming what is missing or wrong. */
  readonly message: string;
  /** Set when another datacenter refused it (`?dc=`): its tokens are its own. */
  readonly datacenter: string | null;
}

const listeners = new Set<(p: AuthProblem) => void>();

/** Called on each request refused for want of a (valid, sufficient) token. */
export function onAuthProblem(fn: (p: AuthProblem) => void): void {
  listeners.add(fn);
}

/**
 * Why this page forgot its token (the node's 401 for it): the requests that follow carry no
 * token and are refused for want of one, and the person should still read why the pasted
 * token was dropped, not only that one is missing.
 */
let droppedBecause: string | null = null;

/**
 * Tells the listeners, and forgets a token this node refused: sending it again would only
 * count against this address's failed-authentication limit (429). A refusal by another
 * datacenter says nothing about the token here. `sent` is the token the request carried: a
 * refusal of a request sent without it (one still in flight when a token was pasted) must
 * not drop the token just pasted.
 */
function refused(res: Response, body: ErrorReply | null, sent: string | null): void {
  const datacenter = res.headers.get('x-rollcall-datacenter');
  let message = body?.error?.message || `HTTP ${res.status}`;
  if (res.status === 401 && datacenter === null) {
    if (sent !== null && sent === token()) {
      setToken(null);
      droppedBecause = message;
    } else if (sent === null && token() === null && droppedBecause !== null) message = droppedBecause;
  }
  const problem = { status: res.status, message, datacenter };
  for (const fn of listeners) fn(problem);
}

const isAuthStatus = (status: number): boolean => status === 401 || status === 403 || status === 429;

function headers(extra?: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = Object.assign({ accept: 'application/json' }, extra || {});
  const t = token();
  if (t) out.authorization = `Bearer ${t}`;
  return out;
}

/** The node that answered the last request (x-rollcall-node). */
export let answeredBy: string | null = null;

/** GETs JSON of the shape T (the caller names the endpoint's reply, from wire.ts); throws on an error status. */
export async function getJson<T>(path: string, timeoutMs?: number): Promise<T> {
  const sent = token();
  const res = await fetch(path, {
    headers: headers(),
    signal: AbortSignal.timeout(timeoutMs || 5000),
    cache: 'no-store',
  });
  answeredBy = res.headers.get('x-rollcall-node') || answeredBy;
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const reply = body as ErrorReply | null;
    if (isAuthStatus(res.status)) refused(res, reply, sent);
    throw Object.assign(new Error(reply?.error?.message || `HTTP ${res.status}`), { status: res.status });
  }
  return body as T;
}

export type StreamStatus = 'open' | 'retrying';

/** Handlers by event name ('message' for unnamed events), each given that event's parsed JSON data. */
export type StreamHandlers<E> = { readonly [K in keyof E]: (data: E[K]) => void };

export interface Stream {
  close(): void;
}

/**
 * Opens a Server-Sent Events stream that reconnects by itself until close() is called.
 * 'url()' is asked at every fresh connection (so a watch resumes from what the page has);
 * EventSource's own quick reconnects resume with Last-Event-ID. 'on' maps event names
 * ('message' for unnamed events) to handlers of the parsed JSON data; 'status' hears
 * 'open' and 'retrying'.
 */
export function openStream<E>(url: () => string, on: StreamHandlers<E>, status: (s: StreamStatus) => void): Stream {
  // The data of each event is what the server sends under that name; JSON.parse cannot check it.
  const handlers = on as unknown as Readonly<Record<string, (data: unknown) => void>>;
  return token() ? fetchStream(url, handlers, status) : eventSource(url, handlers, status);
}

function eventSource(
  url: () => string,
  on: Readonly<Record<string, (data: unknown) => void>>,
  status: (s: StreamStatus) => void,
): Stream {
  let es: EventSource | null = null;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connect = () => {
    const source = new EventSource(url());
    es = source;
    source.onopen = () => status('open');
    source.onerror = () => {
      if (closed) return;
      status('retrying');
      // A refused stream (an HTTP error) is not retried by EventSource itself.
      if (source.readyState === EventSource.CLOSED) {
        clearTimeout(timer);
        timer = setTimeout(connect, 2000);
      }
    };
    for (const [name, fn] of Object.entries(on)) {
      source.addEventListener(name, (ev) => fn(JSON.parse((ev as MessageEvent<string>).data)));
    }
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (es) es.close();
    },
  };
}

function fetchStream(
  url: () => string,
  on: Readonly<Record<string, (data: unknown) => void>>,
  status: (s: StreamStatus) => void,
): Stream {
  const ctrl = new AbortController();
  let closed = false;
  const dispatch = (block: string) => {
    let name = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) name = line.slice(6).trim();
      else if (line.startsWith('data:')) data += line.slice(5).trim();
    }
    const fn = on[name];
    if (fn && data) fn(JSON.parse(data));
  };
  const run = async () => {
    while (!closed) {
      try {
        const sent = token();
        const res = await fetch(url(), {
          headers: headers({ accept: 'text/event-stream' }),
          signal: ctrl.signal,
          cache: 'no-store',
        });
        if (!res.ok) {
          const reply = (await res.json().catch(() => null)) as ErrorReply | null;
          if (isAuthStatus(res.status)) refused(res, reply, sent);
          throw new Error(reply?.error?.message || `HTTP ${res.status}`);
        }
        status('open');
        if (!res.body) throw new Error('no body');
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buf = '';
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          buf += decoder.decode(r.value, { stream: true }).replace(/\r\n/g, '\n');
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            dispatch(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch {
        // A dropped or refused stream: retried below, unless closed meanwhile.
        if (closed) return;
      }
      if (closed) return;
      status('retrying');
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  void run();
  return {
    close() {
      closed = true;
      ctrl.abort();
    },
  };
}
