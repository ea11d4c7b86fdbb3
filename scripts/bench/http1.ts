/**
 * Just enough HTTP/1.1 for a load generator: request bytes built once, and an
 * incremental response parser (status line, Content-Length or chunked bodies, streamed
 * bodies handed out as they arrive). Pure: no sockets here.
 *
 * Why our own and not autocannon: one generator must drive plain request/response load,
 * per-request records for the failover run, paced keepalives, and thousands of streaming
 * watch responses, for two servers, while costing as little CPU as possible on a 2-core
 * machine it shares with six server processes. A request is a prebuilt Buffer and a
 * response is parsed without building header objects.
 */

export interface RequestSpec {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly body?: string | Buffer;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The bytes of one keep-alive request. */
export function buildRequest(spec: RequestSpec): Buffer {
  const body =
    spec.body === undefined ? null : typeof spec.body === 'string' ? Buffer.from(spec.body, 'utf8') : spec.body;
  let head = `${spec.method} ${spec.path} HTTP/1.1\r\nHost: ${spec.host}\r\n`;
  for (const [k, v] of Object.entries(spec.headers ?? {})) head += `${k}: ${v}\r\n`;
  if (body) head += `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n`;
  head += '\r\n';
  const h = Buffer.from(head, 'latin1');
  return body ? Buffer.concat([h, body]) : h;
}

export interface ResponseHandlers {
  /** The status line and raw header block have arrived. */
  onHead?(status: number, headerBlock: string): void;
  /** A piece of the (de-chunked) body. */
  onBody?(piece: Buffer): void;
  /** The whole response has arrived. */
  onComplete(status: number): void;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-data-end' | 'trailer';

const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Thrown (from feed) on bytes that are not an HTTP/1.1 response. */
export class HttpParseError extends Error {
  override readonly name = 'HttpParseError';
}

/**
 * Parses a sequence of responses on one connection. `feed` may be given any split of the
 * byte stream; handlers run synchronously from inside it.
 */
export class ResponseParser {
  private buf: Buffer | null = null;
  private state: State = 'head';
  private status = 0;
  private remaining = 0;
  /** The server said `Connection: close` on the current or last response. */
  closeAfter = false;

  constructor(private readonly handlers: ResponseHandlers) {}

  /** True between the start of a response and its end. */
  get midResponse(): boolean {
    return this.state !== 'head' || (this.buf !== null && this.buf.length > 0);
  }

  feed(chunk: Buffer): void {
    let buf = this.buf && this.buf.length > 0 ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.state === 'head') {
        const end = buf.indexOf(CRLFCRLF);
        if (end < 0) break;
        const head = buf.toString('latin1', 0, end);
        buf = buf.subarray(end + 4);
        if (!head.startsWith('HTTP/1.'))
          throw new HttpParseError(`not an HTTP/1.x response: ${JSON.stringify(head.slice(0, 40))}`);
        const status = Number(head.slice(9, 12));
        if (!Number.isInteger(status))
          throw new HttpParseError(`bad status line: ${JSON.stringify(head.split('\r\n')[0])}`);
        if (status >= 100 && status < 200) continue; // 100 Continue and friends: no body
        this.status = status;
        const lower = head.toLowerCase();
        this.closeAfter = /\r\nconnection:\s*close/.test(lower);
        this.handlers.onHead?.(status, head);
        if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
          this.state = 'chunk-size';
        } else {
          const m = /\r\ncontent-length:\s*(\d+)/.exec(lower);
          const len = m ? Number(m[1]) : 0;
          if (len === 0) {
            this.handlers.onComplete(status);
            continue;
          }
          this.remaining = len;
          this.state = 'length';
        }
      } else if (this.state === 'length' || this.state === 'chunk-data') {
        if (buf.length === 0) break;
        const take = Math.min(this.remaining, buf.length);
        if (this.handlers.onBody) this.handlers.onBody(buf.subarray(0, take));
        buf = buf.subarray(take);
        this.remaining -= take;
        if (this.remaining > 0) break;
        if (this.state === 'length') {
          this.state = 'head';
          this.handlers.onComplete(this.status);
        } else {
          this.state = 'chunk-data-end';
        }
      } else if (this.state === 'chunk-data-end') {
        if (buf.length < 2) break;
        if (buf[0] !== 13 || buf[1] !== 10) throw new HttpParseError('chunk data not followed by CRLF');
        buf = buf.subarray(2);
        this.state = 'chunk-size';
      } else if (this.state === 'chunk-size') {
        const end = buf.indexOf(CRLF);
        if (end < 0) break;
        const line = buf.toString('latin1', 0, end);
        const size = Number.parseInt(line.split(';')[0]!.trim(), 16);
        if (!Number.isInteger(size) || size < 0) throw new HttpParseError(`bad chunk size ${JSON.stringify(line)}`);
        buf = buf.subarray(end + 2);
        if (size === 0) this.state = 'trailer';
        else {
          this.remaining = size;
          this.state = 'chunk-data';
        }
      } else {
        // trailer: zero or more header lines, then an empty line
        const end = buf.indexOf(CRLF);
        if (end < 0) break;
        buf = buf.subarray(end + 2);
        if (end === 0) {
          this.state = 'head';
          this.handlers.onComplete(this.status);
        }
      }
    }
    this.buf = buf.length > 0 ? Buffer.from(buf) : null;
  }
}

/**
 * Splits a text stream into records at a delimiter ("\n\n" for SSE, "\n" for etcd's
 * newline-delimited JSON), keeping an incomplete tail for the next piece.
 */
export class RecordSplitter {
  private tail = '';

  constructor(private readonly delimiter: string) {}

  push(piece: string): string[] {
    const text = this.tail + piece;
    const parts = text.split(this.delimiter);
    this.tail = parts.pop()!;
    return parts.filter((p) => p.length > 0);
  }
}
