/**
 * A Server-Sent Events parser (the WHATWG event-stream format): bytes in, messages out.
 * Lines end in LF, CRLF or CR; `:` starts a comment; a blank line dispatches; `data` lines
 * join with LF; a field without a colon has an empty value; one space after the colon is
 * dropped. Incremental: a chunk may end anywhere, even inside a UTF-8 sequence or a CRLF.
 */
import { StringDecoder } from 'node:string_decoder';

export interface SseMessage {
  /** `message` unless the server named the event. */
  readonly event: string;
  readonly data: string;
  /** The last `id:` seen on the stream so far (it persists across messages), or null. */
  readonly id: string | null;
  /** A `retry:` reconnection time in ms, when this message carried one. */
  readonly retry?: number;
}

export class SseParser {
  readonly #decoder = new StringDecoder('utf8');
  #buf = '';
  #skipLf = false;
  #event = '';
  #data: string[] = [];
  #hasData = false;
  #id: string | null = null;
  #retry: number | undefined;

  /** Feeds a chunk; returns the messages it completed. */
  push(chunk: Buffer | string): SseMessage[] {
    this.#buf += typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < this.#buf.length; i++) {
      const c = this.#buf.charCodeAt(i);
      if (this.#skipLf) {
        this.#skipLf = false;
        if (c === 10) {
          start = i + 1;
          continue;
        }
      }
      if (c !== 10 && c !== 13) continue;
      this.#line(this.#buf.slice(start, i), out);
      if (c === 13) this.#skipLf = true;
      start = i + 1;
    }
    this.#buf = this.#buf.slice(start);
    return out;
  }

  #line(line: string, out: SseMessage[]): void {
    if (line.length === 0) {
      if (this.#hasData || this.#event.length > 0) {
        out.push({
          event: this.#event || 'message',
          data: this.#data.join('\n'),
          id: this.#id,
          ...(this.#retry === undefined ? {} : { retry: this.#retry }),
        });
      }
      this.#event = '';
      this.#data = [];
      this.#hasData = false;
      this.#retry = undefined;
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment (keepalive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#event = value;
        break;
      case 'data':
        this.#data.push(value);
        this.#hasData = true;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.#id = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.#retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }
}
