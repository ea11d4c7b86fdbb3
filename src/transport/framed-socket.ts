import type { Socket } from 'node:net';

import type { Payload } from './codec.js';
import { TransportError } from './errors.js';
import { FrameDecoder, framePieces } from './framing.js';

export type FrameHandler = (payload: Buffer) => void;

/** Idle connections are probed so a vanished peer is noticed without application pings. */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

/**
 * A socket that speaks frames: owns the decoder, funnels every socket error into one
 * `onClose(error)` call, and stops dispatching frames the moment it is failed, so a bad
 * frame cannot be followed by further frames from the same chunk.
 */
export class FramedSocket {
  private readonly decoder: FrameDecoder;
  private frameHandler: FrameHandler;
  private error: TransportError | null = null;
  private isClosed = false;
  private discarding = false;
  private decodeErrorHandler: ((error: TransportError) => void) | null = null;
  /** Resolves once the OS socket is closed. */
  readonly closed: Promise<void>;

  constructor(
    readonly socket: Socket,
    /** `host:port` of the other end, for logs. */
    readonly remote: string,
    maxFrameBytes: number,
    frameHandler: FrameHandler,
    onClose: (error: TransportError | null) => void,
  ) {
    this.decoder = new FrameDecoder(maxFrameBytes);
    this.frameHandler = frameHandler;
    // Raft messages are latency-sensitive and we already batch per tick, so Nagle only adds delay.
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
    let resolveClosed!: () => void;
    this.closed = new Promise((resolve) => (resolveClosed = resolve));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error: Error) => {
      this.error ??= new TransportError('SOCKET_ERROR', error.message, error);
    });
    socket.on('close', () => {
      this.isClosed = true;
      try {
        onClose(this.error);
      } finally {
        resolveClosed();
      }
    });
  }

  /** Swaps the consumer; takes effect for the very next frame, even within the same chunk. */
  setFrameHandler(handler: FrameHandler): void {
    this.frameHandler = handler;
  }

  setMaxFrameBytes(maxFrameBytes: number): void {
    this.decoder.setMaxFrameBytes(maxFrameBytes);
  }

  get isOpen(): boolean {
    return !this.isClosed && !this.socket.destroyed && this.socket.writable;
  }

  /** Bytes handed to the socket but not yet to the kernel (counts against the queue bound). */
  get writableLength(): number {
    return this.socket.writableLength;
  }

  /**
   * Writes all payloads as frames, in one `socket.write` or, when a large binary value
   * goes out as its own buffer, one corked series of them (a single writev); returns the
   * bytes written (0 if closed).
   */
  write(payloads: readonly Payload[]): number {
    if (!this.isOpen || payloads.length === 0) return 0;
    const pieces = framePieces(payloads);
    let bytes = 0;
    if (pieces.length > 1) this.socket.cork();
    for (const piece of pieces) {
      this.socket.write(piece);
      bytes += piece.byteLength;
    }
    if (pieces.length > 1) this.socket.uncork();
    return bytes;
  }

  /**
   * From now on, whatever arrives is dropped unread and no frame is dispatched (a refused
   * connection held before it is closed). Reading goes on, so a hang-up is still noticed.
   */
  discardInput(): void {
    this.discarding = true;
  }

  /**
   * While set, a frame the decoder refuses (e.g. oversized) stops input and goes to this
   * handler, which decides when to close, instead of failing the socket at once.
   */
  setDecodeErrorHandler(handler: ((error: TransportError) => void) | null): void {
    this.decodeErrorHandler = handler;
  }

  /** Closes the connection; the first recorded error is what `onClose` reports. */
  fail(error: TransportError | null): void {
    if (error !== null) this.error ??= error;
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.discarding) return;
    const { frames, error } = this.decoder.push(chunk);
    for (const frame of frames) {
      if (this.socket.destroyed || this.discarding) return;
      this.frameHandler(frame);
    }
    if (error === null) return;
    const handler = this.decodeErrorHandler;
    if (handler === null) return this.fail(error);
    this.discarding = true;
    handler(error);
  }
}
