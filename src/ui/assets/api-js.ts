/** JSON requests and SSE streams (EventSource, or fetch when a token is needed). (embedded: served as-is by routes/page.ts; no backticks or ${ inside). */
export default String.raw`// Talking to the node that served this page: JSON requests and event streams.
// Auth is off in a dev cluster. When a node answers 401, the page asks for a token once,
// keeps it for this tab (sessionStorage), and from then on sends it on every request; event
// streams then go through fetch, since EventSource cannot send an Authorization header.

const TOKEN_KEY = 'rollcall.token';
const listeners = new Set();

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Called with true when a request was refused for want of a (valid) token. */
export function onAuthNeeded(fn) {
  listeners.add(fn);
}

function headers(extra) {
  const out = Object.assign({ accept: 'application/json' }, extra || {});
  const t = token();
  if (t) out.authorization = 'Bearer ' + t;
  return out;
}

/** The node that answered the last request (x-rollcall-node). */
export let answeredBy = null;

export async function getJson(path, timeoutMs) {
  const res = await fetch(path, { headers: headers(), signal: AbortSignal.timeout(timeoutMs || 5000), cache: 'no-store' });
  answeredBy = res.headers.get('x-rollcall-node') || answeredBy;
  if (res.status === 401) for (const fn of listeners) fn(true);
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new Error((body && body.error && body.error.message) || 'HTTP ' + res.status);
    err.status = res.status;
    throw err;
  }
  return body;
}

/**
 * Opens a Server-Sent Events stream that reconnects by itself until close() is called.
 * 'url()' is asked at every fresh connection (so a watch resumes from what the page has);
 * EventSource's own quick reconnects resume with Last-Event-ID. 'on' maps event names
 * ('message' for unnamed events) to handlers of the parsed JSON data; 'status' hears
 * 'open' and 'retrying'.
 */
export function openStream(url, on, status) {
  return token() ? fetchStream(url, on, status) : eventSource(url, on, status);
}

function eventSource(url, on, status) {
  let es = null;
  let closed = false;
  let timer = null;
  const connect = () => {
    es = new EventSource(url());
    es.onopen = () => status('open');
    es.onerror = () => {
      if (closed) return;
      status('retrying');
      // A refused stream (an HTTP error) is not retried by EventSource itself.
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(timer);
        timer = setTimeout(connect, 2000);
      }
    };
    for (const [name, fn] of Object.entries(on)) {
      es.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
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

function fetchStream(url, on, status) {
  const ctrl = new AbortController();
  let closed = false;
  const dispatch = (block) => {
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
        const res = await fetch(url(), { headers: headers({ accept: 'text/event-stream' }), signal: ctrl.signal, cache: 'no-store' });
        if (res.status === 401) for (const fn of listeners) fn(true);
        if (!res.ok) throw new Error('HTTP ' + res.status);
        status('open');
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buf = '';
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          buf += decoder.decode(r.value, { stream: true }).replace(/\r\n/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            dispatch(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (err) {
        if (closed) return;
      }
      if (closed) return;
      status('retrying');
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  run();
  return {
    close() {
      closed = true;
      ctrl.abort();
    },
  };
}
`;
