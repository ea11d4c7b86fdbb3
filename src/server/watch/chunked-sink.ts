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
  constructor(private readonly res: ServerResponse) {
    // The status line and headers go out (or queue in the response) now, ahead of any
    // byte written to the socket directly. (`headersSent` is already true after
    // writeHead, before those bytes are anywhere.)
    res.flushHeaders();
  }

  get writableLength(): number {
    return this.res.writableLength;
  }

  write(data: Buffer): boolean {
    const res = this.res;
    const socket = res.socket;
    // Straight to the socket only when everything the response wrote is already there
    // (it holds bytes itself until it has a socket, e.g. behind a pipelined request) and
    // the body is chunked; otherwise (HTTP/1.0, ended, no socket) the response's own write.
    if (
      data.length === 0 ||
      socket === null ||
      res.writableLength !== socket.writableLength ||
      !res.chunkedEncoding ||
      res.writableEnded
    ) {
      return res.write(data);
    }
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
    if (event === 'drain') {
      // Writes that went straight to the socket make the socket, not the response, report
      // the drain; writes through the response make the response report it. Both are
      // listened to (a spurious drain only makes the hub look again).
      this.res.on('drain', listener);
      const socket = this.res.socket;
      if (socket !== null) socket.on('drain', listener);
      else this.res.once('socket', (s) => s.on('drain', listener));
      return this;
    }
    this.res.on('close', listener);
    return this;
  }
}
