import type { Socket } from 'node:net';

import type { Logger } from 'pino';

import type { Codec } from './codec.js';
import { errnoOf, isRoutineNetworkError, TransportError } from './errors.js';
import { FramedSocket } from './framed-socket.js';
import {
  claimedId,
  dialerProof,
  acceptorProof,
  HANDSHAKE_MAX_FRAME_BYTES,
  macMatches,
  newNonce,
  parseHello,
  PROTOCOL_VERSION,
  type Challenge,
  type Welcome,
} from './handshake.js';

export interface InboundConnectionOptions {
  readonly selfId: string;
  readonly secret: string;
  readonly codec: Codec;
  readonly logger: Logger;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly isKnownPeer: (id: string) => boolean;
  readonly onAuthenticated: (connection: InboundConnection) => void;
  /** One call per data frame, in arrival order. */
  readonly onFrame: (connection: InboundConnection, payload: Buffer) => void;
  readonly onRefused: (connection: InboundConnection) => void;
  readonly onClosed: (connection: InboundConnection, error: TransportError | null) => void;
}

/**
 * A connection a peer opened to us: we challenge, verify the peer's proof, and only then
 * pass its frames on. Until then the frame limit stays tiny and nothing is decoded as a
 * message.
 */
export class InboundConnection {
  private readonly connection: FramedSocket;
  private handshakeTimer: NodeJS.Timeout | null;
  private readonly nonce = newNonce();
  private id: string | null = null;
  private refused = false;

  constructor(
    socket: Socket,
    private readonly options: InboundConnectionOptions,
  ) {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.connection = new FramedSocket(
      socket,
      remote,
      HANDSHAKE_MAX_FRAME_BYTES,
      (frame) => this.onHello(frame),
      (error) => this.onClosed(error),
    );
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = null;
      this.refuse(
        new TransportError('HANDSHAKE_TIMEOUT', `no valid hello within ${options.handshakeTimeoutMs} ms`),
        undefined,
      );
    }, options.handshakeTimeoutMs);
    const challenge: Challenge = { t: 'challenge', v: PROTOCOL_VERSION, id: options.selfId, nonce: this.nonce };
    this.send(challenge);
  }

  /** The authenticated peer id, or null during the handshake. */
  get peerId(): string | null {
    return this.id;
  }

  get remote(): string {
    return this.connection.remote;
  }

  /** Closes the connection; resolves once the socket is closed. */
  close(error: TransportError | null = null): Promise<void> {
    this.connection.fail(error);
    return this.connection.closed;
  }

  private send(message: Challenge | Welcome): void {
    const encoded = this.options.codec.encode(message);
    if (encoded instanceof TransportError) this.connection.fail(encoded);
    else this.connection.write([encoded]);
  }

  private onHello(frame: Buffer): void {
    const decoded = this.options.codec.decode(frame);
    if (!decoded.ok) {
      this.refuse(decoded.error, undefined);
      return;
    }
    const claimed = claimedId(decoded.value);
    const hello = parseHello(decoded.value);
    if (hello instanceof TransportError) {
      this.refuse(hello, claimed);
      return;
    }
    const { selfId, secret } = this.options;
    if (hello.id === selfId || !this.options.isKnownPeer(hello.id)) {
      this.refuse(new TransportError('AUTH_FAILED', 'claimed node id is not in our peer list'), claimed);
      return;
    }
    if (!macMatches(dialerProof(secret, this.nonce, hello.id, selfId), hello.mac)) {
      this.refuse(new TransportError('AUTH_FAILED', 'handshake proof does not match our cluster secret'), claimed);
      return;
    }
    this.clearHandshakeTimer();
    this.id = hello.id;
    this.send({ t: 'welcome', mac: acceptorProof(secret, hello.nonce, hello.id, selfId) });
    this.connection.setMaxFrameBytes(this.options.maxFrameBytes);
    this.connection.setFrameHandler((payload) => this.options.onFrame(this, payload));
    this.options.onAuthenticated(this);
  }

  /** Refusals are warnings: they mean a misconfigured node or a stranger on the port. */
  private refuse(error: TransportError, claimed: string | undefined): void {
    if (this.refused || !this.connection.isOpen) return;
    this.refused = true;
    // Who knocked and why; never the secret or the proof they sent.
    this.options.logger.warn(
      { remote: this.connection.remote, claimedId: claimed ?? null, code: error.code, reason: error.message },
      'refused peer connection',
    );
    this.options.onRefused(this);
    this.connection.fail(error);
  }

  private onClosed(error: TransportError | null): void {
    this.clearHandshakeTimer();
    if (this.id === null && !this.refused) {
      if (error === null || isRoutineNetworkError(error)) {
        // A restarting peer or a port probe: not worth more than debug.
        this.options.logger.debug(
          { remote: this.connection.remote, errno: errnoOf(error) },
          'inbound connection closed during the handshake',
        );
      } else {
        // E.g. an oversized frame before authentication: the decoder failed the socket itself.
        this.refused = true;
        this.options.logger.warn(
          { remote: this.connection.remote, claimedId: null, code: error.code, reason: error.message },
          'refused peer connection',
        );
        this.options.onRefused(this);
      }
    }
    this.options.onClosed(this, error);
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
  }
}
