// Talking to the node that served this page: JSON requests and event streams.
// Auth is off in a dev cluster. When a node answers 401, the page asks for a token once,
// keeps it for this tab (sessionStorage), and from then on sends it on every request; event
// streams then go through fetch, since EventSource cannot send an Authorization header.
import type { ErrorReply } from './wire.js';

const TOKEN_KEY = 'rollcall.token';
const listeners = new Set<(needed: boolean) => void>();

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Called with true when a request was refused for want of a (valid) token. */
export function onAuthNeeded(fn: (needed: boolean) => void): void {
  listeners.add(fn);
}

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
  const res = await fetch(path, {
    headers: headers(),
    signal: AbortSignal.timeout(timeoutMs || 5000),
    cache: 'no-store',
  });
  answeredBy = res.headers.get('x-rollcall-node') || answeredBy;
  if (res.status === 401) for (const fn of listeners) fn(true);
  const body: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const reply = body as ErrorReply | null;
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
        const res = await fetch(url(), {
          headers: headers({ accept: 'text/event-stream' }),
          signal: ctrl.signal,
          cache: 'no-store',
        });
        if (res.status === 401) for (const fn of listeners) fn(true);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
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
