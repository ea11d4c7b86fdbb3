/**
 * A bare HTTP/1.1 client for the fuzzer: it writes exactly the bytes it is given (bad
 * request lines, headers no library would send, wrong framing) on a fresh connection and
 * reads the first answer, whatever the server does. Node's http client and fetch refuse to
 * send most of what the fuzzer needs.
 *
 * An answer ends at its Content-Length, at the last chunk, after the headers for HEAD, 1xx
 * (skipped), 204, 304 and event streams (a watch never ends: its headers are enough), or
 * when the server closes.
 */
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  readonly status: number;
  /** Header names lower-cased; a repeated header keeps its last value. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export type RawOutcome =
  | { readonly kind: 'answer'; readonly answer: RawAnswer; readonly ms: number }
  /** The server closed (or reset) the connection without a complete answer. */
  | { readonly kind: 'closed'; readonly partial: string; readonly error: string | null; readonly ms: number }
  | { readonly kind: 'timeout'; readonly partial: string; readonly ms: number }
  /** Nothing listens: the node is gone. */
  | { readonly kind: 'refused'; readonly error: string; readonly ms: number };

export interface RawRequest {
  readonly chunks: readonly Buffer[];
  /** End our side after writing (the server sees EOF: a short body can then not hang). */
  readonly halfClose: boolean;
  /** HEAD: the answer has no body whatever its headers say. */
  readonly head: boolean;
}

/** Parses one answer from the start of `buf`; null while incomplete (or `closed`: what there is). */
export function parseAnswer(buf: Buffer, head: boolean, closed: boolean): RawAnswer | null {
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) return null;
    const lines = buf.subarray(at, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
    if (!Number.isInteger(status)) return { status: 0, headers: {}, body: buf.subarray(at) };
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const start = end + 4;
    if (status >= 100 && status < 200) {
      at = start;
      continue;
    }
    const empty =
      head || status === 204 || status === 304 || /^text\/event-stream/i.test(headers['content-type'] ?? '');
    if (empty) return { status, headers, body: Buffer.alloc(0) };
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const body = dechunk(buf.subarray(start));
      if (body !== null) return { status, headers, body };
      return closed ? { status, headers, body: buf.subarray(start) } : null;
    }
    const len = headers['content-length'];
    if (len !== undefined) {
      const n = Number(len);
      if (buf.length - start >= n) return { status, headers, body: buf.subarray(start, start + n) };
      return closed ? { status, headers, body: buf.subarray(start) } : null;
    }
    return closed ? { status, headers, body: buf.subarray(start) } : null;
  }
}

/** The body of a complete chunked message, or null while the last chunk has not come. */
function dechunk(buf: Buffer): Buffer | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return null;
    const size = Number.parseInt(buf.subarray(at, eol).toString('latin1'), 16);
    if (!Number.isInteger(size) || size < 0) return null;
    if (size === 0) return Buffer.concat(parts);
    if (buf.length < eol + 2 + size + 2) return null;
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Sends `req` on a fresh connection to `port` and waits for the first answer (or `timeoutMs`). */
export function sendRaw(port: number, req: RawRequest, timeoutMs: number, host = '127.0.0.1'): Promise<RawOutcome> {
  const started = performance.now();
  const ms = (): number => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    let settled = false;
    let got = Buffer.alloc(0);
    let connected = false;
    let error: string | null = null;
    const socket: Socket = connect({ port, host });
    const finish = (o: RawOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(
      () => finish({ kind: 'timeout', partial: got.subarray(0, 300).toString('latin1'), ms: ms() }),
      timeoutMs,
    );
    socket.on('connect', () => {
      connected = true;
      for (const c of req.chunks) socket.write(c);
      if (req.halfClose) socket.end();
    });
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const answer = parseAnswer(got, req.head, false);
      if (answer !== null) finish({ kind: 'answer', answer, ms: ms() });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
      if (!connected) finish({ kind: 'refused', error, ms: ms() });
    });
    socket.on('close', () => {
      const answer = got.length > 0 ? parseAnswer(got, req.head, true) : null;
      if (answer !== null) finish({ kind: 'answer', answer, ms: ms() });
      else finish({ kind: 'closed', partial: got.subarray(0, 300).toString('latin1'), error, ms: ms() });
    });
  });
}
