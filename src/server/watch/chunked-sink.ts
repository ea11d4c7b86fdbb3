/**
 * A watcher's response as the hub's sink, writing each Buffer to the socket as one HTTP
 * chunk whose framing is built once per Buffer. The hub writes the same Buffer to every
 * watcher of a change; through `ServerResponse.write` each of those writes would build its
 * own chunk header and go through four internal writes. Here it is one socket write.
 *
 * Bytes still go out in call order: the response writes to the same socket directly once
 * its headers are out, so frames written either way interleave correctly.
 */
import type { ServerResponse } from 'node:http';
import type { WatchSink } from './hub.js';

const CRLF = Buffer.from('\r\n');
const framed = new WeakMap<Buffer, Buffer>();

/** `data` as one chunk of a chunked HTTP body (cached: the same Buffer goes to many watchers). */
export function httpChunk(data: Buffer): Buffer {
  let chunk = framed.get(data);
  if (chunk === undefined) {
    chunk = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`, 'latin1'), data, CRLF]);
    framed.set(data, chunk);
  }
  return chunk;
}

export class ChunkedResponseSink implements WatchSink {
  constructor(private readonly res: ServerResponse) {}

  get writableLength(): number {
    return this.res.writableLength;
  }

  write(data: Buffer): boolean {
    const socket = this.res.socket;
    // Before the headers are out, on an HTTP/1.0 (unchunked) response, or once the socket
    // is gone, the response's own write knows what to do.
    if (data.length === 0 || socket === null || !this.res.headersSent || !this.res.chunkedEncoding || this.res.writableEnded) return this.res.write(data);
    return socket.write(httpChunk(data));
  }

  end(data?: Buffer): unknown {
    return data === undefined ? this.res.end() : this.res.end(data);
  }

  destroy(): unknown {
    return this.res.destroy();
  }

  cork(): void {
    this.res.cork();
  }

  uncork(): void {
    this.res.uncork();
  }

  on(event: 'drain' | 'close', listener: () => void): unknown {
    // Writes that went straight to the socket make the socket, not the response, report
    // the drain; the socket reports it for the response's own writes too.
    if (event === 'drain') {
      const socket = this.res.socket;
      if (socket !== null) socket.on('drain', listener);
      else this.res.on('drain', listener);
      return this;
    }
    this.res.on('close', listener);
    return this;
  }
}
