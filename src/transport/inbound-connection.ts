import type { Socket } from 'node:net';

import type { Logger } from 'pino';

import type { ClusterIdentity } from './cluster-identity.js';
import type { Codec } from './codec.js';
import { errnoOf, isRoutineNetworkError, TransportError } from './errors.js';
import type { FoundingState } from './founding-probe.js';
import { FramedSocket } from './framed-socket.js';
import {
  acceptorProof,
  type Challenge,
  claimedId,
  dialerProof,
  HANDSHAKE_MAX_FRAME_BYTES,
  type Hello,
  macMatches,
  newNonce,
  PROTOCOL_VERSION,
  parseHello,
  type Welcome,
} from './handshake.js';

export interface InboundConnectionOptions {
  readonly selfId: string;
  readonly secret: string;
  readonly cluster: ClusterIdentity;
  readonly codec: Codec;
  readonly logger: Logger;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly isKnownPeer: (id: string) => boolean;
  /**
   * With TLS: the node ids the peer's (verified) certificate names; the id its hello
   * claims must be one of them. null: plain TCP, no certificate to check.
   */
  readonly certifiedIds: readonly string[] | null;
  readonly onAuthenticated: (connection: InboundConnection) => void;
  /**
   * This node's answer to a founding probe (founding-probe.ts). Absent: the welcome says
   * nothing, as a build before the probe would.
   */
  readonly describeFounding?: (asker: string) => FoundingState;
  /** One call per data frame, in arrival order. */
  readonly onFrame: (connection: InboundConnection, payload: Buffer) => void;
  /**
   * The connection is refused: log it (the transport rate-limits that) and answer how long
   * to hold it before closing, in ms (0: close now). Not called for a client that simply
   * hangs up during the handshake.
   */
  readonly onRefused: (connection: InboundConnection, error: TransportError, claimedId: string | null) => number;
  readonly onClosed: (connection: InboundConnection, error: TransportError | null) => void;
}

/**
 * A connection a peer opened to us: we challenge, verify the peer's proof, and only then
 * pass its frames on. Until then the frame limit stays tiny and nothing is decoded as a
 * message. A refused connection may be held open for a while before it is closed (the
 * transport decides): meanwhile whatever it sends is discarded unread.
 */
export class InboundConnection {
  private readonly connection: FramedSocket;
  private handshakeTimer: NodeJS.Timeout | null;
  private readonly nonce = newNonce();
  private id: string | null = null;
  private refused = false;
  /** A founding probe, answered: its peer is not connected to us (peerId stays null). */
  private probed = false;
  private holdTimer: NodeJS.Timeout | null = null;
  /** The peer's IP address (no port), the key refusals are counted under. */
  readonly remoteAddress: string;

  constructor(
    socket: Socket,
    private readonly options: InboundConnectionOptions,
  ) {
    this.remoteAddress = socket.remoteAddress ?? '?';
    const remote = `${this.remoteAddress}:${socket.remotePort ?? '?'}`;
    this.connection = new FramedSocket(
      socket,
      remote,
      HANDSHAKE_MAX_FRAME_BYTES,
      (frame) => this.onHello(frame),
      (error) => this.onClosed(error),
    );
    // E.g. an oversized frame before authentication: refused like a bad hello.
    this.connection.setDecodeErrorHandler((error) => this.refuse(error, undefined));
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = null;
      this.refuse(
        new TransportError('HANDSHAKE_TIMEOUT', `no valid hello within ${options.handshakeTimeoutMs} ms`),
        undefined,
      );
    }, options.handshakeTimeoutMs);
    const challenge: Challenge = {
      t: 'challenge',
      v: PROTOCOL_VERSION,
      id: options.selfId,
      nonce: this.nonce,
      ...options.cluster.wire,
    };
    this.send(challenge);
  }

  /** The authenticated peer id, or null during the handshake. */
  get peerId(): string | null {
    return this.id;
  }

  get remote(): string {
    return this.connection.remote;
  }

  /** Still in the handshake: neither authenticated nor refused. */
  get isHandshaking(): boolean {
    return this.id === null && !this.refused && !this.probed;
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
    const certified = this.options.certifiedIds;
    if (certified !== null && !certified.includes(hello.id)) {
      // A node of this cluster's CA speaking as another node: refused before its proof counts.
      const named = certified.length === 0 ? 'no node id' : `node ${certified.join(', ')}`;
      this.refuse(
        new TransportError('TLS_IDENTITY', `its TLS certificate names ${named}, not ${hello.id}, the id it claims`),
        claimed,
      );
      return;
    }
    if (!macMatches(dialerProof(secret, this.nonce, hello.id, selfId), hello.mac)) {
      this.refuse(new TransportError('AUTH_FAILED', 'handshake proof does not match our cluster secret'), claimed);
      return;
    }
    // After the proof: only a member that knows the secret learns it has the wrong cluster.
    const mismatch = this.options.cluster.check(hello.id, hello);
    if (mismatch !== null) {
      this.refuse(mismatch, claimed);
      return;
    }
    if (hello.ask === 'founding') {
      this.answerFoundingProbe(hello);
      return;
    }
    this.options.cluster.adopt(hello);
    this.clearHandshakeTimer();
    this.id = hello.id;
    this.send({ t: 'welcome', mac: acceptorProof(secret, hello.nonce, hello.id, selfId) });
    this.connection.setMaxFrameBytes(this.options.maxFrameBytes);
    this.connection.setDecodeErrorHandler(null);
    this.connection.setFrameHandler((payload) => this.options.onFrame(this, payload));
    this.options.onAuthenticated(this);
  }

  /**
   * A founding probe: answered in the welcome, never the prober's stream (peerId stays
   * null: it neither replaces the one it may have nor adopts a cluster id for us). The prober hangs up once
   * it has read the answer; one that does not is closed after the handshake timeout.
   */
  private answerFoundingProbe(hello: Hello): void {
    const { secret, selfId, describeFounding } = this.options;
    this.clearHandshakeTimer();
    this.probed = true;
    this.options.logger.debug({ peer: hello.id }, 'answering a founding probe');
    this.send({
      t: 'welcome',
      mac: acceptorProof(secret, hello.nonce, hello.id, selfId),
      ...(describeFounding === undefined ? {} : { founding: describeFounding(hello.id) }),
    });
    this.connection.setFrameHandler(() => this.connection.fail(null));
    this.holdTimer = setTimeout(() => {
      this.holdTimer = null;
      this.connection.fail(null);
    }, this.options.handshakeTimeoutMs);
    this.holdTimer.unref();
  }

  /**
   * Refusals are warnings (a misconfigured node or a stranger on the port); the transport
   * logs them, rate-limited per source. Who knocked and why; never the secret or the proof
   * they sent.
   */
  private refuse(error: TransportError, claimed: string | undefined): void {
    if (this.refused || !this.connection.isOpen) return;
    this.refused = true;
    this.clearHandshakeTimer();
    const holdMs = this.options.onRefused(this, error, claimed ?? null);
    if (!(holdMs > 0)) {
      this.connection.fail(error);
      return;
    }
    // A small tarpit: a client retrying in a loop waits for each hang-up.
    this.connection.discardInput();
    this.holdTimer = setTimeout(() => {
      this.holdTimer = null;
      this.connection.fail(error);
    }, holdMs);
    this.holdTimer.unref();
  }

  private onClosed(error: TransportError | null): void {
    this.clearHandshakeTimer();
    if (this.holdTimer !== null) {
      clearTimeout(this.holdTimer);
      this.holdTimer = null;
    }
    if (this.id === null && !this.refused && !this.probed) {
      if (error === null || isRoutineNetworkError(error)) {
        // A restarting peer or a port probe: not worth more than debug.
        this.options.logger.debug(
          { remote: this.connection.remote, errno: errnoOf(error) },
          'inbound connection closed during the handshake',
        );
      } else {
        // A socket error before authentication (not a routine reset).
        this.refused = true;
        this.options.onRefused(this, error, null);
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
