import type { SecureContext } from 'node:tls';

import type { Logger } from 'pino';
import { Backoff, type BackoffOptions } from './backoff.js';
import type { ClusterClaim, ClusterIdentity } from './cluster-identity.js';
import type { Codec, Payload } from './codec.js';
import { dialPeer } from './dial.js';
import { errnoOf, isRoutineNetworkError, TransportError } from './errors.js';
import { FramedSocket } from './framed-socket.js';
import { FRAME_HEADER_BYTES } from './framing.js';
import {
  acceptorProof,
  dialerProof,
  HANDSHAKE_MAX_FRAME_BYTES,
  type Hello,
  macMatches,
  newNonce,
  PROTOCOL_VERSION,
  parseChallenge,
  parseWelcome,
} from './handshake.js';
import type { DropReason, PeerAddress } from './types.js';

export interface OutboundPeerOptions {
  readonly selfId: string;
  readonly peerId: string;
  readonly address: PeerAddress;
  readonly secret: string;
  readonly cluster: ClusterIdentity;
  readonly codec: Codec;
  readonly logger: Logger;
  readonly maxQueueBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly backoff: BackoffOptions;
  /** Fired when the authenticated stream comes up or goes down. */
  readonly onStatus: (connected: boolean) => void;
  /** Fired when a dial is refused (ECONNREFUSED): nothing listens at the address. */
  readonly onRefused?: () => void;
  /** With mutual TLS: the context in force now (read at every dial, so a reload applies to the next one); null: plain TCP. */
  readonly secureContext: () => SecureContext | null;
}

type State =
  | 'idle' // constructed, not started
  | 'connecting' // TCP connect or handshake in progress
  | 'open' // authenticated; frames flow
  | 'waiting' // backing off before the next dial
  | 'closed';

export interface OutboundCounters {
  sentFrames: number;
  sentBytes: number;
  writes: number;
  connects: number;
  readonly droppedBy: Record<DropReason, number>;
}

/**
 * Our single outbound stream to one peer: dials, authenticates as the dialer, batches
 * queued frames into one write per tick, and redials with backoff whenever the stream
 * dies. Messages are only accepted while the stream is open; anything else is dropped
 * and counted, because Raft retransmits and stale messages are worse than none.
 */
export class OutboundPeer {
  private state: State = 'idle';
  private address: PeerAddress;
  private connection: FramedSocket | null = null;
  private queue: Payload[] = [];
  private queueBytes = 0;
  private flushHandle: NodeJS.Immediate | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  private readonly logger: Logger;
  /** Last dial failure, so a peer that stays unreachable logs one warning, not one per retry. */
  private lastFailure: string | null = null;
  /** Whether the current dial got as far as answering the challenge. */
  private helloSent = false;
  private closing: Promise<void> | null = null;
  /** The current connection completed the handshake. */
  private authenticated = false;
  readonly counters: OutboundCounters = {
    sentFrames: 0,
    sentBytes: 0,
    writes: 0,
    connects: 0,
    droppedBy: { disconnected: 0, queueFull: 0, tooLarge: 0, encodeFailed: 0, fault: 0 },
  };

  constructor(private readonly options: OutboundPeerOptions) {
    this.address = options.address;
    this.backoff = new Backoff(options.backoff);
    this.logger = options.logger.child({ peer: options.peerId });
  }

  get isConnected(): boolean {
    return this.state === 'open';
  }

  get queuedBytes(): number {
    return this.queueBytes;
  }

  /** Bytes accepted for this peer and not yet handed to the kernel: queued here or buffered by the socket. */
  get pendingBytes(): number {
    return this.queueBytes + (this.connection?.writableLength ?? 0);
  }

  start(): void {
    if (this.state === 'idle') this.dial();
  }

  countDrop(reason: DropReason, count = 1): void {
    this.counters.droppedBy[reason] += count;
  }

  /**
   * Whether a frame of `frameBytes` fits under the queue bound now. The socket's own
   * buffer counts too: a peer that stops reading must not grow our memory.
   */
  hasRoomFor(frameBytes: number): boolean {
    return this.pendingBytes + frameBytes <= this.options.maxQueueBytes;
  }

  /** Queues one encoded message for the next flush, or says why it was dropped. */
  enqueue(payload: Payload): DropReason | null {
    if (this.state !== 'open' || this.connection === null) return this.drop('disconnected');
    const frameBytes = FRAME_HEADER_BYTES + payload.byteLength;
    if (!this.hasRoomFor(frameBytes)) return this.drop('queueFull');
    this.queue.push(payload);
    this.queueBytes += frameBytes;
    // setImmediate rather than a microtask: everything Raft sends in this macrotask
    // (including across awaits) lands in one write.
    this.flushHandle ??= setImmediate(() => this.flush());
    return null;
  }

  /**
   * Writes what is queued now instead of on the scheduled turn: for a caller about to hold
   * the event loop (the leader's own log write) with messages that may already leave.
   */
  flushNow(): void {
    if (this.flushHandle === null) return;
    clearImmediate(this.flushHandle);
    this.flush();
  }

  /** Points the stream at a new address (membership change); redials promptly. */
  setAddress(address: PeerAddress): void {
    if (address.host === this.address.host && address.port === this.address.port) return;
    this.address = address;
    this.logger.info({ address }, 'peer address changed; redialing');
    this.backoff.reset();
    if (this.state === 'waiting') {
      this.clearRetry();
      this.dial();
    } else if (this.connection !== null) {
      this.helloSent = false; // our hang-up, not a refusal by the peer
      this.connection.fail(null);
    }
  }

  /** Stops redialing and closes the stream; resolves once the socket is closed. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state = 'closed';
    this.clearRetry();
    const connection = this.connection;
    if (connection === null) return;
    connection.fail(null);
    await connection.closed;
  }

  private drop(reason: DropReason): DropReason {
    this.countDrop(reason);
    return reason;
  }

  private flush(): void {
    this.flushHandle = null;
    const connection = this.connection;
    if (this.queue.length === 0 || connection === null || this.state !== 'open') return;
    const frames = this.queue;
    this.queue = [];
    this.queueBytes = 0;
    this.counters.sentBytes += connection.write(frames);
    this.counters.sentFrames += frames.length;
    this.counters.writes += 1;
  }

  private dial(): void {
    this.state = 'connecting';
    this.helloSent = false;
    const { host, port } = this.address;
    const remote = `${host}:${port}`;
    const secureContext = this.options.secureContext();
    const peerId = this.options.peerId;
    // With TLS the peer's certificate must name the node we meant to dial (dial.ts).
    const socket = dialPeer(this.address, peerId, secureContext);
    const connection = new FramedSocket(
      socket,
      remote,
      HANDSHAKE_MAX_FRAME_BYTES,
      (frame) => this.onChallenge(connection, frame),
      (error) => this.onClosed(connection, error),
    );
    this.connection = connection;
    // One deadline for connect + handshake: a blackholed address would otherwise hang
    // in connect for minutes.
    this.handshakeTimer = setTimeout(() => {
      this.handshakeTimer = null;
      connection.fail(
        new TransportError(
          'HANDSHAKE_TIMEOUT',
          `no handshake with ${remote} within ${this.options.handshakeTimeoutMs} ms`,
        ),
      );
    }, this.options.handshakeTimeoutMs);
  }

  private decode(connection: FramedSocket, frame: Buffer): unknown {
    const decoded = this.options.codec.decode(frame);
    if (!decoded.ok) {
      connection.fail(decoded.error);
      return undefined;
    }
    return decoded.value;
  }

  private onChallenge(connection: FramedSocket, frame: Buffer): void {
    const value = this.decode(connection, frame);
    if (!connection.isOpen) return;
    const challenge = parseChallenge(value);
    if (challenge instanceof TransportError) {
      connection.fail(challenge);
      return;
    }
    const { selfId, peerId, secret } = this.options;
    if (challenge.id !== peerId) {
      // A stale address (a different node now listens there) must not receive this peer's traffic.
      connection.fail(new TransportError('AUTH_FAILED', `dialed ${peerId} but ${challenge.id} answered`));
      return;
    }
    // Before our hello: a peer of another cluster never gets to check our proof.
    const { cluster } = this.options;
    const mismatch = cluster.check(peerId, challenge);
    if (mismatch !== null) {
      connection.fail(mismatch);
      return;
    }
    const nonce = newNonce();
    const hello: Hello = {
      t: 'hello',
      id: selfId,
      nonce,
      mac: dialerProof(secret, challenge.nonce, selfId, peerId),
      ...cluster.wire,
    };
    const encoded = this.options.codec.encode(hello);
    if (encoded instanceof TransportError) {
      connection.fail(encoded);
      return;
    }
    const theirs: ClusterClaim =
      challenge.joining === true ? { joining: true } : challenge.cid === undefined ? {} : { cid: challenge.cid };
    connection.setFrameHandler((next) => this.onWelcome(connection, nonce, theirs, next));
    connection.write([encoded]);
    this.helloSent = true;
  }

  private onWelcome(connection: FramedSocket, nonce: Buffer, theirCluster: ClusterClaim, frame: Buffer): void {
    const value = this.decode(connection, frame);
    if (!connection.isOpen) return;
    const welcome = parseWelcome(value);
    if (welcome instanceof TransportError) {
      connection.fail(welcome);
      return;
    }
    const { selfId, peerId, secret } = this.options;
    if (!macMatches(acceptorProof(secret, nonce, selfId, peerId), welcome.mac)) {
      connection.fail(new TransportError('AUTH_FAILED', `${peerId} could not prove it knows the cluster secret`));
      return;
    }
    this.clearHandshakeTimer();
    this.options.cluster.adopt(theirCluster);
    // The acceptor never writes after the welcome; anything more is a protocol violation.
    connection.setFrameHandler(() =>
      connection.fail(new TransportError('PROTOCOL', 'unexpected frame from the acceptor after the handshake')),
    );
    this.state = 'open';
    this.authenticated = true;
    this.backoff.reset();
    this.lastFailure = null;
    this.counters.connects += 1;
    this.logger.info({ remote: connection.remote, protocol: PROTOCOL_VERSION }, 'connected to peer');
    this.options.onStatus(true);
  }

  private onClosed(connection: FramedSocket, error: TransportError | null): void {
    if (connection !== this.connection) return;
    this.connection = null;
    this.clearHandshakeTimer();
    if (this.flushHandle !== null) {
      clearImmediate(this.flushHandle);
      this.flushHandle = null;
    }
    // Frames still queued die with the stream; the ones already written may or may not
    // have arrived, which Raft tolerates either way.
    if (this.queue.length > 0) {
      this.countDrop('disconnected', this.queue.length);
      this.queue = [];
      this.queueBytes = 0;
    }
    // Not `state === 'open'`: close() has already moved state on by the time we get here.
    const wasOpen = this.authenticated;
    this.authenticated = false;
    const closing = this.state === 'closed';
    if (!wasOpen && this.helloSent && (error === null || isRoutineNetworkError(error))) {
      // An acceptor refuses by hanging up after our hello; say so instead of "connection reset".
      error = new TransportError(
        'AUTH_FAILED',
        `peer hung up after our hello (different cluster secret or cluster id, or we are not in its peer list${this.options.secureContext() === null ? '' : ', or our certificate does not name us'}?)`,
        error ?? undefined,
      );
    }
    const fields = { remote: connection.remote, code: error?.code, errno: errnoOf(error), reason: error?.message };
    if (wasOpen) {
      if (closing) this.logger.debug(fields, 'closed connection to peer');
      else this.logger.info(fields, 'disconnected from peer');
      this.options.onStatus(false);
    } else if (!closing) {
      this.logDialFailure(error, fields);
      if (errnoOf(error) === 'ECONNREFUSED') this.options.onRefused?.();
    }
    if (closing) return;
    this.state = 'waiting';
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.dial();
    }, this.backoff.next());
  }

  private logDialFailure(error: TransportError | null, fields: Record<string, unknown>): void {
    // A refused connect is what a down peer looks like: debug. A failed handshake usually
    // means misconfiguration: warn, but once per streak of identical failures, since we
    // retry every couple of seconds.
    if (error === null || isRoutineNetworkError(error)) {
      this.logger.debug(fields, 'cannot reach peer; will retry');
      return;
    }
    const key = `${error.code}/${errnoOf(error) ?? ''}`;
    if (key === this.lastFailure) {
      this.logger.debug(fields, 'handshake with peer failed again; will retry');
      return;
    }
    this.lastFailure = key;
    this.logger.warn(fields, 'handshake with peer failed; will retry');
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
  }
}
