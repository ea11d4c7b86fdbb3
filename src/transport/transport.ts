import type { AddressInfo, Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  type TLSSocket,
  type Server as TlsServer,
} from 'node:tls';

import type { Logger } from 'pino';

import { RepeatLimiter, type RepeatSummary } from '../log/repeat-limiter.js';
import { type HandshakeRefusal, onRefusedHandshake } from '../security/handshake-refusals.js';
import { certificateNodeIds } from '../security/node-identity.js';

import { type BackoffOptions, DEFAULT_BACKOFF } from './backoff.js';
import { ClusterIdentity } from './cluster-identity.js';
import { type Codec, createCodec } from './codec.js';
import { errnoOf, isRoutineNetworkError, TransportError } from './errors.js';
import type { FoundingState } from './founding-probe.js';
import { FRAME_HEADER_BYTES, MAX_FRAME_LENGTH } from './framing.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, MAX_NODE_ID_LENGTH } from './handshake.js';
import { InboundConnection } from './inbound-connection.js';
import { OutboundPeer } from './peer-connection.js';
import type {
  Direction,
  DropReason,
  Faults,
  PeerAddress,
  PeerStats,
  PeerStatusEvent,
  PeerTlsOptions,
  TransportOptions,
  TransportStats,
} from './types.js';

export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;
/** Twice the frame limit, so one maximum-size frame always fits next to ordinary traffic. */
export const DEFAULT_MAX_QUEUE_BYTES = 128 * 1024 * 1024;
/** Connections that have not authenticated yet; beyond this, new ones are dropped at once. */
const MAX_PENDING_HANDSHAKES = 64;
export const DEFAULT_REFUSAL_DELAY_MS = 1_000;
export const DEFAULT_MAX_HELD_REFUSALS = 64;
export const DEFAULT_REFUSAL_LOG_INTERVAL_MS = 10_000;

/** What a refusal is counted under: one full line per source and reason, then a count per interval. */
interface RefusalKey {
  readonly source: string;
  readonly code: string;
}

interface PeerRecord {
  address: PeerAddress;
  readonly outbound: OutboundPeer;
  inbound: InboundConnection | null;
  receivedFrames: number;
  receivedBytes: number;
  receivedDropped: number;
  lastContact: number | null;
}

type Lifecycle = 'new' | 'starting' | 'running' | 'closing' | 'closed';

/**
 * Authenticated, framed, batched message passing between Rollcall nodes.
 *
 * Each node dials every peer and sends only on that outbound stream; it receives only on
 * the streams peers dialed to it. Two one-way streams per pair mean there is never a race
 * over which of two simultaneous dials wins (the same choice etcd makes).
 */
export class PeerTransport<M> {
  private readonly id: string;
  private readonly secret: string;
  private readonly cluster: ClusterIdentity;
  private readonly logger: Logger;
  private readonly codec: Codec = createCodec();
  private readonly maxFrameBytes: number;
  private readonly maxQueueBytes: number;
  private readonly handshakeTimeoutMs: number;
  private readonly backoff: BackoffOptions;
  private readonly faultsEnabled: boolean;
  private readonly onMessage: (from: string, message: M) => void;
  private readonly describeFounding: ((asker: string) => FoundingState) | undefined;
  private readonly onPeerStatus: ((event: PeerStatusEvent) => void) | undefined;
  private readonly onPeerRefused: ((peer: string) => void) | undefined;
  private readonly listenAddress: PeerAddress;

  private lifecycle: Lifecycle = 'new';
  private server: Server | null = null;
  /** Mutual TLS material in force (null: plain TCP), and the context built from it for dials. */
  private tls: PeerTlsOptions | null;
  private secureContext: SecureContext | null;
  private bound: PeerAddress | null = null;
  private starting: Promise<PeerAddress> | null = null;
  private closing: Promise<void> | null = null;
  private readonly peers = new Map<string, PeerRecord>();
  /** Every accepted socket, authenticated or not, so close() can reach them all. */
  private readonly inbound = new Set<InboundConnection>();
  /** Sockets of removed peers that are still closing; close() waits for them too. */
  private readonly retiring = new Set<Promise<void>>();
  private dropTo: ReadonlySet<string> = new Set();
  private dropFrom: ReadonlySet<string> = new Set();
  /** With dropTo/dropFrom: only these kinds are dropped; null drops everything. */
  private dropKinds: ReadonlySet<string> | null = null;
  private readonly faultKind: ((message: M) => string) | undefined;
  private readonly detachBinary: TransportOptions<M>['detachBinary'];
  private droppedUnknownPeer = 0;
  private refusedConnections = 0;
  private readonly refusalDelayMs: number;
  private readonly maxHeldRefusals: number;
  /** Refused connections held open for `refusalDelayMs` before they are closed. */
  private readonly held = new Set<InboundConnection>();
  private readonly refusalLog: RepeatLimiter<RefusalKey>;
  /** Told of every refused TLS handshake (after it is logged here): the node-wide count. */
  private readonly tlsRefusalListeners: ((refusal: HandshakeRefusal) => void)[] = [];

  constructor(options: TransportOptions<M>) {
    this.id = options.id;
    this.secret = options.secret;
    this.cluster = options.cluster ?? ClusterIdentity.of(null);
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.faultsEnabled = options.faults === true;
    this.faultKind = options.faultKind;
    this.detachBinary = options.detachBinary;
    this.onMessage = options.onMessage;
    this.describeFounding = options.describeFounding;
    this.onPeerStatus = options.onPeerStatus;
    this.onPeerRefused = options.onPeerRefused;
    this.listenAddress = options.listen;
    this.tls = options.tls ?? null;
    this.secureContext = this.tls === null ? null : tlsContext(this.tls);
    this.refusalDelayMs = options.refusalDelayMs ?? DEFAULT_REFUSAL_DELAY_MS;
    this.maxHeldRefusals = options.maxHeldRefusals ?? DEFAULT_MAX_HELD_REFUSALS;
    const refusalLogIntervalMs = options.refusalLogIntervalMs ?? DEFAULT_REFUSAL_LOG_INTERVAL_MS;
    validate(this.id, this.secret, this.maxFrameBytes, this.maxQueueBytes, this.handshakeTimeoutMs, this.backoff);
    validateRefusals(this.refusalDelayMs, this.maxHeldRefusals, refusalLogIntervalMs);
    this.logger = options.logger.child({ component: 'transport' });
    this.refusalLog = new RepeatLimiter<RefusalKey>({
      intervalMs: refusalLogIntervalMs,
      ...(options.clock === undefined ? {} : { now: options.clock }),
      onSummary: (summary) => this.logRefusalSummary(summary),
    });
    this.applyPeers(options.peers);
  }

  /** Binds the listener and starts dialing peers; resolves with the bound address. */
  start(): Promise<PeerAddress> {
    if (this.lifecycle !== 'new') {
      return Promise.reject(new TransportError('INVALID_STATE', `cannot start a transport that is ${this.lifecycle}`));
    }
    this.lifecycle = 'starting';
    this.starting = this.listen();
    return this.starting;
  }

  /**
   * Queues a message for `to`. Returns false when it was dropped (and counted in `stats()`)
   * instead: then it certainly never reached the peer, so a request can be retried safely.
   */
  send(to: string, message: M): boolean {
    const record = this.peers.get(to);
    if (record === undefined) {
      this.droppedUnknownPeer += 1;
      this.logger.debug({ to }, 'dropping message to a node that is not a peer');
      return false;
    }
    const outbound = record.outbound;
    if (this.dropTo.has(to) && this.faultMatches(message)) {
      outbound.countDrop('fault');
      return false;
    }
    // Checked before encoding so a down peer costs nothing per message.
    if (!outbound.isConnected) {
      outbound.countDrop('disconnected');
      return false;
    }
    // A large binary value (a snapshot chunk) is written as it is, not copied into the encoding.
    const detached = this.detachBinary?.(message, this.codec.binaryPlaceholder);
    // Checked before encoding too, so a peer that is not keeping up costs no encoding per
    // message (a 1-MiB chunk's bytes are known without one); enqueue checks the exact size.
    if (!outbound.hasRoomFor(FRAME_HEADER_BYTES + (detached?.binary.byteLength ?? 0))) {
      outbound.countDrop('queueFull');
      return false;
    }
    const payload =
      detached === undefined ? this.codec.encode(message) : this.codec.encodeSpliced(detached.shell, detached.binary);
    if (payload instanceof TransportError) {
      outbound.countDrop('encodeFailed');
      this.logger.error({ to, code: payload.code, err: payload.cause }, 'dropping message that cannot be encoded');
      return false;
    }
    if (payload.byteLength > this.maxFrameBytes) {
      outbound.countDrop('tooLarge');
      this.logger.error(
        { to, code: 'FRAME_TOO_LARGE', bytes: payload.byteLength, maxFrameBytes: this.maxFrameBytes },
        'dropping message larger than the frame limit',
      );
      return false;
    }
    return outbound.enqueue(payload) === null;
  }

  /** Bytes sent to `to` that have not reached the kernel yet (0 for an unknown peer): the stream's backlog. */
  pendingBytes(to: string): number {
    return this.peers.get(to)?.outbound.pendingBytes ?? 0;
  }

  /** Whether our authenticated outbound stream to `to` is up (messages to it are not dropped as disconnected). */
  isConnected(to: string): boolean {
    return this.peers.get(to)?.outbound.isConnected ?? false;
  }

  /**
   * Hands everything queued for every peer to the kernel now rather than on the next turn
   * of the event loop (each stream keeps its order: only the moment changes). For a caller
   * about to hold the loop with messages that may already leave.
   */
  flush(): void {
    for (const record of this.peers.values()) record.outbound.flushNow();
  }

  sendMany(to: string, messages: readonly M[]): void {
    for (const message of messages) this.send(to, message);
  }

  /**
   * Applies a membership change: dials new peers, redials moved ones, and disconnects
   * (both directions) peers that left. An entry for this node is ignored.
   */
  setPeers(peers: ReadonlyMap<string, PeerAddress>): void {
    if (this.lifecycle === 'closing' || this.lifecycle === 'closed') return;
    this.applyPeers(peers);
  }

  /**
   * Replaces the mutual-TLS material (a certificate reload): new inbound handshakes and new
   * dials use it; established connections keep theirs. Throws (and changes nothing) when
   * OpenSSL refuses the material, or when the transport was built without TLS.
   */
  setTls(tls: PeerTlsOptions): void {
    if (this.tls === null)
      throw new TransportError('INVALID_STATE', 'TLS cannot be turned on in a running transport built without it');
    const context = tlsContext(tls);
    if (this.server !== null) (this.server as TlsServer).setSecureContext({ cert: tls.cert, key: tls.key, ca: tls.ca });
    this.tls = tls;
    this.secureContext = context;
  }

  /** Is `message` of a kind the fault setting drops? (Called only for a peer named in it.) */
  private faultMatches(message: M): boolean {
    if (this.dropKinds === null) return true;
    return this.faultKind !== undefined && this.dropKinds.has(this.faultKind(message));
  }

  /** Replaces the fault setting; `setFaults({})` heals. Requires `faults: true`. */
  setFaults(faults: Faults): void {
    if (!this.faultsEnabled) {
      throw new TransportError(
        'FAULTS_DISABLED',
        'fault injection requires constructing the transport with faults: true',
      );
    }
    this.dropTo = new Set(faults.dropTo ?? []);
    this.dropFrom = new Set(faults.dropFrom ?? []);
    this.dropKinds = faults.kinds !== undefined && faults.kinds.length > 0 ? new Set(faults.kinds) : null;
    this.logger.info(
      { dropTo: [...this.dropTo], dropFrom: [...this.dropFrom], kinds: this.dropKinds ? [...this.dropKinds] : 'all' },
      'fault injection updated',
    );
  }

  stats(): TransportStats {
    const peers: Record<string, PeerStats> = {};
    for (const [id, record] of this.peers) {
      const { counters } = record.outbound;
      const droppedBy: Record<DropReason, number> = { ...counters.droppedBy };
      let dropped = 0;
      for (const count of Object.values(droppedBy)) dropped += count;
      peers[id] = {
        address: record.address,
        connected: record.outbound.isConnected,
        inboundConnected: record.inbound !== null,
        sentFrames: counters.sentFrames,
        sentBytes: counters.sentBytes,
        writes: counters.writes,
        queuedBytes: record.outbound.queuedBytes,
        dropped,
        droppedBy,
        receivedFrames: record.receivedFrames,
        receivedBytes: record.receivedBytes,
        receivedDropped: record.receivedDropped,
        connects: counters.connects,
        lastContact: record.lastContact,
      };
    }
    return {
      id: this.id,
      listening: this.bound,
      peers,
      droppedUnknownPeer: this.droppedUnknownPeer,
      refusedConnections: this.refusedConnections,
      heldRefusals: this.held.size,
    };
  }

  /**
   * `listener` hears of every TLS handshake refused on the peer port, after this transport
   * has logged it (rate-limited): for rollcall_tls_handshake_failures_total{listener="peer"}.
   */
  onTlsRefused(listener: (refusal: HandshakeRefusal) => void): void {
    this.tlsRefusalListeners.push(listener);
  }

  /** Closes the listener, every socket and every timer. Idempotent; never rejects. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async listen(): Promise<PeerAddress> {
    const server = this.tls === null ? createServer((socket) => this.accept(socket)) : this.createTlsServer(this.tls);
    this.server = server;
    const { host, port } = this.listenAddress;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      this.server = null;
      this.lifecycle = 'closed';
      throw new TransportError(
        'LISTEN_FAILED',
        `cannot listen on ${host}:${port}: ${errnoOf(error) ?? String(error)}`,
        error,
      );
    }
    // After a successful bind, errors are rare (e.g. EMFILE on accept) and not fatal.
    server.on('error', (error) => this.logger.error({ err: error }, 'listener error'));
    const info = server.address() as AddressInfo;
    this.bound = { host: info.address, port: info.port };
    if (this.lifecycle !== 'starting') {
      // close() ran while we were binding; it waits for us and then tears down the server.
      throw new TransportError('INVALID_STATE', 'transport was closed while starting');
    }
    this.lifecycle = 'running';
    this.logger.debug({ listening: this.bound, peers: [...this.peers.keys()] }, 'transport started');
    for (const record of this.peers.values()) record.outbound.start();
    return this.bound;
  }

  /**
   * Mutual TLS: a peer must present a certificate of our CA (or the TLS handshake fails and
   * is refused like a bad hello: counted, logged once per source per interval); its
   * connection reaches `accept` only once verified, within the same deadline as the hello.
   */
  private createTlsServer(tls: PeerTlsOptions): TlsServer {
    const server = createTlsServer(
      {
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        requestCert: true,
        rejectUnauthorized: true,
        handshakeTimeout: this.handshakeTimeoutMs,
      },
      (socket) => this.accept(socket),
    );
    // Why, in the words of the other TLS listeners (src/security/handshake-refusals.ts): a
    // certificate that fails verification shows only as ECONNRESET in the error itself, on
    // a socket that no longer knows its address.
    onRefusedHandshake(server, 'peer', (refusal) => {
      const { source, remotePort, reason, detail } = refusal;
      this.refusedConnections += 1;
      for (const listener of this.tlsRefusalListeners) listener(refusal);
      if (this.refusalLog.admit(`TLS_HANDSHAKE ${source}`, { source, code: 'TLS_HANDSHAKE' })) {
        this.logger.warn(
          { remote: `${source}:${remotePort ?? '?'}`, code: 'TLS_HANDSHAKE', tlsReason: reason, reason: detail },
          'refused peer connection',
        );
      }
    });
    return server;
  }

  private async shutdown(): Promise<void> {
    const previous = this.lifecycle;
    this.lifecycle = 'closing';
    if (previous === 'starting') await this.starting?.catch(() => undefined);
    const server = this.server;
    this.server = null;
    // server.close() only calls back once every accepted socket is gone, so close
    // those in parallel rather than first.
    const serverClosed =
      server === null
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            server.close((error) => {
              if (error !== undefined) this.logger.debug({ err: error }, 'listener close reported an error');
              resolve();
            });
          });
    const sockets: Promise<void>[] = [serverClosed, ...this.retiring];
    for (const connection of this.inbound) sockets.push(connection.close());
    for (const record of this.peers.values()) sockets.push(record.outbound.close());
    await Promise.all(sockets);
    // Counts of refusals not summarized yet go out now rather than never.
    this.refusalLog.close();
    this.lifecycle = 'closed';
    this.logger.debug('transport closed');
  }

  private applyPeers(peers: ReadonlyMap<string, PeerAddress>): void {
    for (const [id, record] of this.peers) {
      if (id !== this.id && peers.has(id)) continue;
      this.peers.delete(id);
      this.logger.info({ peer: id }, 'peer removed');
      this.retire(record.outbound.close());
      const inbound = record.inbound;
      if (inbound !== null) {
        record.inbound = null;
        this.emitStatus(id, 'inbound', false);
        this.retire(inbound.close());
      }
    }
    for (const [id, address] of peers) {
      if (id === this.id) continue;
      const existing = this.peers.get(id);
      if (existing !== undefined) {
        existing.address = address;
        existing.outbound.setAddress(address);
        continue;
      }
      const outbound = new OutboundPeer({
        selfId: this.id,
        peerId: id,
        address,
        secret: this.secret,
        cluster: this.cluster,
        codec: this.codec,
        logger: this.logger,
        maxQueueBytes: this.maxQueueBytes,
        handshakeTimeoutMs: this.handshakeTimeoutMs,
        backoff: this.backoff,
        onStatus: (connected) => {
          if (connected) this.touch(id);
          this.emitStatus(id, 'outbound', connected);
        },
        onRefused: () => this.emitRefused(id),
        secureContext: () => this.secureContext,
      });
      this.peers.set(id, {
        address,
        outbound,
        inbound: null,
        receivedFrames: 0,
        receivedBytes: 0,
        receivedDropped: 0,
        lastContact: null,
      });
      if (this.lifecycle === 'running') {
        this.logger.info({ peer: id, address }, 'peer added');
        outbound.start();
      }
    }
  }

  private retire(closed: Promise<void>): void {
    this.retiring.add(closed);
    void closed.finally(() => this.retiring.delete(closed));
  }

  private accept(socket: Socket): void {
    if (this.lifecycle !== 'running') {
      socket.destroy();
      return;
    }
    let pending = 0;
    for (const connection of this.inbound) if (connection.isHandshaking) pending += 1;
    if (pending >= MAX_PENDING_HANDSHAKES) {
      // Bounded so a flood of idle connections cannot exhaust memory or descriptors.
      const source = socket.remoteAddress ?? '?';
      if (this.refusalLog.admit(`TOO_MANY_PENDING ${source}`, { source, code: 'TOO_MANY_PENDING' })) {
        this.logger.warn(
          { remote: `${source}:${socket.remotePort ?? '?'}`, code: 'TOO_MANY_PENDING' },
          'too many unauthenticated connections; dropping',
        );
      }
      this.refusedConnections += 1;
      socket.on('error', (error) => this.logger.debug({ err: error }, 'error on a dropped connection'));
      socket.destroy();
      return;
    }
    const connection = new InboundConnection(socket, {
      selfId: this.id,
      secret: this.secret,
      cluster: this.cluster,
      codec: this.codec,
      logger: this.logger,
      maxFrameBytes: this.maxFrameBytes,
      handshakeTimeoutMs: this.handshakeTimeoutMs,
      isKnownPeer: (id) => this.peers.has(id),
      certifiedIds:
        this.tls === null ? null : certificateNodeIds((socket as TLSSocket).getPeerCertificate().subjectaltname),
      onAuthenticated: (authenticated) => this.onInboundAuthenticated(authenticated),
      ...(this.describeFounding === undefined ? {} : { describeFounding: this.describeFounding }),
      onFrame: (from, payload) => this.onInboundFrame(from, payload),
      onRefused: (refused, error, claimedId) => this.onInboundRefused(refused, error, claimedId),
      onClosed: (closed, error) => this.onInboundClosed(closed, error),
    });
    this.inbound.add(connection);
  }

  private onInboundAuthenticated(connection: InboundConnection): void {
    const id = connection.peerId;
    const record = id === null ? undefined : this.peers.get(id);
    if (id === null || record === undefined) return;
    const previous = record.inbound;
    record.inbound = connection;
    this.touch(id);
    if (previous !== null) {
      // The peer keeps one outbound stream; a second one means it redialed and the old
      // one is dead but not yet noticed (e.g. the peer restarted).
      this.logger.info(
        { peer: id, remote: connection.remote },
        'peer redialed; replacing its previous inbound connection',
      );
      void previous.close();
    } else {
      this.logger.debug({ peer: id, remote: connection.remote }, 'peer connected to us');
      this.emitStatus(id, 'inbound', true);
    }
  }

  private onInboundFrame(connection: InboundConnection, payload: Buffer): void {
    const from = connection.peerId;
    const record = from === null ? undefined : this.peers.get(from);
    if (from === null || record === undefined || record.inbound !== connection) return;
    record.receivedFrames += 1;
    record.receivedBytes += FRAME_HEADER_BYTES + payload.length;
    record.lastContact = Date.now();
    if (this.dropFrom.has(from) && this.dropKinds === null) {
      record.receivedDropped += 1;
      return;
    }
    const decoded = this.codec.decode(payload);
    if (!decoded.ok) {
      // An authenticated peer sending garbage is a bug or a version mismatch: resync by reconnecting.
      void connection.close(decoded.error);
      return;
    }
    if (this.dropFrom.has(from) && this.faultMatches(decoded.value as M)) {
      record.receivedDropped += 1;
      return;
    }
    try {
      this.onMessage(from, decoded.value as M);
    } catch (error) {
      this.logger.error({ err: error, from }, 'onMessage handler threw; message skipped');
    }
  }

  /**
   * Logs a refusal, at most one line per source and reason per interval (a client looping
   * on the port must not flood the log), and answers how long to hold the connection
   * before closing it: a small tarpit, bounded by `maxHeldRefusals` so it cannot pile up
   * descriptors. A client that only timed out has waited long enough: it goes at once.
   */
  private onInboundRefused(connection: InboundConnection, error: TransportError, claimedId: string | null): number {
    this.refusedConnections += 1;
    const source = connection.remoteAddress;
    if (this.refusalLog.admit(`${error.code} ${source}`, { source, code: error.code })) {
      this.logger.warn(
        { remote: connection.remote, claimedId, code: error.code, reason: error.message },
        'refused peer connection',
      );
    }
    if (error.code === 'HANDSHAKE_TIMEOUT' || this.refusalDelayMs === 0 || this.held.size >= this.maxHeldRefusals)
      return 0;
    if (this.lifecycle !== 'running') return 0;
    this.held.add(connection);
    return this.refusalDelayMs;
  }

  private logRefusalSummary({ context, count, periodMs }: RepeatSummary<RefusalKey>): void {
    const seconds = Math.max(1, Math.round(periodMs / 1000));
    this.logger.warn(
      { source: context.source, code: context.code, refused: count, periodMs: Math.round(periodMs) },
      `refused ${count} more peer connection${count === 1 ? '' : 's'} from ${context.source} in the last ${seconds} s`,
    );
  }

  private onInboundClosed(connection: InboundConnection, error: TransportError | null): void {
    this.inbound.delete(connection);
    this.held.delete(connection);
    const id = connection.peerId;
    if (id === null) return;
    const fields = {
      peer: id,
      remote: connection.remote,
      code: error?.code,
      errno: errnoOf(error),
      reason: error?.message,
    };
    if (error !== null && !isRoutineNetworkError(error) && error.code !== 'SOCKET_ERROR') {
      // FRAME_TOO_LARGE, DECODE_FAILED: the peer sent something we cannot accept.
      this.logger.error(fields, 'closed inbound connection from peer');
    } else if (this.lifecycle === 'closing') {
      this.logger.debug(fields, 'closed inbound connection from peer');
    } else {
      this.logger.info(fields, 'peer disconnected from us');
    }
    const record = this.peers.get(id);
    if (record !== undefined && record.inbound === connection) {
      record.inbound = null;
      this.emitStatus(id, 'inbound', false);
    }
  }

  private touch(id: string): void {
    const record = this.peers.get(id);
    if (record !== undefined) record.lastContact = Date.now();
  }

  private emitRefused(peer: string): void {
    if (this.onPeerRefused === undefined) return;
    try {
      this.onPeerRefused(peer);
    } catch (error) {
      this.logger.error({ err: error, peer }, 'onPeerRefused handler threw');
    }
  }

  private emitStatus(peer: string, direction: Direction, connected: boolean): void {
    if (this.onPeerStatus === undefined) return;
    try {
      this.onPeerStatus({ peer, direction, connected, at: Date.now() });
    } catch (error) {
      this.logger.error({ err: error, peer }, 'onPeerStatus handler threw');
    }
  }
}

function validateRefusals(delayMs: number, maxHeld: number, logIntervalMs: number): void {
  if (!(delayMs >= 0) || !Number.isFinite(delayMs))
    throw new TransportError('INVALID_OPTIONS', 'refusalDelayMs must be a finite number >= 0');
  if (!Number.isInteger(maxHeld) || maxHeld < 0)
    throw new TransportError('INVALID_OPTIONS', 'maxHeldRefusals must be an integer >= 0');
  if (!(logIntervalMs > 0) || !Number.isFinite(logIntervalMs))
    throw new TransportError('INVALID_OPTIONS', 'refusalLogIntervalMs must be positive');
}

function validate(
  id: string,
  secret: string,
  maxFrameBytes: number,
  maxQueueBytes: number,
  handshakeTimeoutMs: number,
  backoff: BackoffOptions,
): void {
  const fail = (message: string): never => {
    throw new TransportError('INVALID_OPTIONS', message);
  };
  if (id.length === 0 || id.length > MAX_NODE_ID_LENGTH) fail(`id must be 1..${MAX_NODE_ID_LENGTH} characters`);
  if (secret.length === 0) fail('secret must not be empty');
  if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > MAX_FRAME_LENGTH) {
    fail(`maxFrameBytes must be an integer in 1..${MAX_FRAME_LENGTH}`);
  }
  if (!Number.isInteger(maxQueueBytes) || maxQueueBytes < 1) fail('maxQueueBytes must be a positive integer');
  if (!(handshakeTimeoutMs > 0)) fail('handshakeTimeoutMs must be positive');
  if (!(backoff.initialMs > 0) || !(backoff.maxMs >= backoff.initialMs)) fail('backoff needs 0 < initialMs <= maxMs');
}

/** Builds the context dials use; throws when OpenSSL refuses the material (a key that is not the certificate's). */
function tlsContext(tls: PeerTlsOptions): SecureContext {
  return createSecureContext({ cert: tls.cert, key: tls.key, ca: tls.ca });
}
