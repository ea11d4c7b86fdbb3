import type { Logger } from 'pino';

import type { BackoffOptions } from './backoff.js';
import type { ClusterIdentity } from './cluster-identity.js';
import type { FoundingState } from './founding-probe.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface TransportOptions<M> {
  /** This node's id; the handshake proves it to peers. */
  readonly id: string;
  /** Where to accept peer connections; port 0 picks a free port (see `start()`'s result). */
  readonly listen: PeerAddress;
  /** Every other node. An entry for `id` itself is ignored, so a whole-cluster map can be passed. */
  readonly peers: ReadonlyMap<string, PeerAddress>;
  /** Shared cluster secret. Never logged. */
  readonly secret: string;
  /** This node's cluster id, checked in the handshake (cluster-identity.ts). Default: none. */
  readonly cluster?: ClusterIdentity;
  readonly logger: Logger;
  /** Called once per message, in order per connection. Exceptions are logged, not propagated. */
  readonly onMessage: (from: string, message: M) => void;
  /** Connection up/down notifications (logging, `/v1/cluster` last-contact). */
  readonly onPeerStatus?: (event: PeerStatusEvent) => void;
  /**
   * A dial to the peer was refused (ECONNREFUSED): nothing listens at its address, so its
   * process is gone or restarting. A partition or an overloaded peer times out instead,
   * which is why this, and not a dropped connection, is the signal to act on at once.
   */
  readonly onPeerRefused?: (peer: string) => void;
  /**
   * This node's answer to a peer's founding probe (founding-probe.ts), read from its
   * durable state at each probe. Absent: probes get no answer, as from a build before them.
   */
  readonly describeFounding?: (asker: string) => FoundingState;
  /** Largest frame accepted or sent. Default 64 MiB. */
  readonly maxFrameBytes?: number;
  /** Bound on bytes waiting to be written to one peer (our queue plus the socket's buffer). Default 128 MiB. */
  readonly maxQueueBytes?: number;
  /** Deadline for connect + handshake. Default 2 s. */
  readonly handshakeTimeoutMs?: number;
  /** Reconnect delays. Default 50 ms doubling to 2 s, with jitter. */
  readonly backoff?: Partial<BackoffOptions>;
  /**
   * A connection refused for what it sent (a bad or forged hello, an unknown id, an
   * oversized frame) is held this long, its input discarded, before it is closed: a small
   * tarpit for a client retrying in a loop. Default 1000 ms; 0 closes at once.
   */
  readonly refusalDelayMs?: number;
  /** Refused connections held at once; beyond this they are closed at once. Default 64. */
  readonly maxHeldRefusals?: number;
  /**
   * Refusals are logged once per source address and reason, then counted: one summary
   * line (`refused N more peer connections from ADDRESS in the last S s`) per this many
   * ms while they go on. Default 10 s.
   */
  readonly refusalLogIntervalMs?: number;
  /** Monotonic milliseconds for the refusal log's intervals (default `performance.now`; tests inject a fake). */
  readonly clock?: () => number;
  /**
   * Mutual TLS between nodes: every connection, both ways, is TLS with a certificate that
   * chains to `ca` and names the node id its side speaks for (a URI SAN
   * `rollcall://node/<id>`, src/security/node-identity.ts); the HMAC handshake still runs
   * inside it as a second factor. Absent: plain TCP with the HMAC handshake only.
   * `setTls` replaces the material for new connections.
   */
  readonly tls?: PeerTlsOptions;
  /**
   * For a message that carries one large binary value (a snapshot chunk): the message with
   * that value replaced by `placeholder`, and the value. The frame is the same bytes as the
   * whole message encoded, but the value goes to the socket as it is instead of being
   * copied into the encoding and the batch. Undefined (or absent): encode it whole.
   */
  readonly detachBinary?: (message: M, placeholder: Uint8Array) => DetachedBinary<M> | undefined;
  /** Enables `setFaults` (tests only). */
  readonly faults?: boolean;
  /** Names a message's kind for `Faults.kinds` (tests only). */
  readonly faultKind?: (message: M) => string;
}

/** A message split for `detachBinary`: the message around its binary value, and the value. */
export interface DetachedBinary<M> {
  readonly shell: M;
  readonly binary: Uint8Array;
}

/** PEM material for mutual TLS between nodes. */
export interface PeerTlsOptions {
  /** This node's certificate chain; its first certificate names this node's id. */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** The CA bundle peers' certificates must chain to. */
  readonly ca: string | Buffer;
}

export type Direction = 'outbound' | 'inbound';

export interface PeerStatusEvent {
  readonly peer: string;
  /** `outbound`: our stream to the peer; `inbound`: the peer's stream to us. */
  readonly direction: Direction;
  readonly connected: boolean;
  /** `Date.now()` at the change. */
  readonly at: number;
}

/** Why an outgoing message never reached the socket. */
export type DropReason =
  /** No authenticated outbound connection (peer down, reconnecting, transport not started or closed). */
  | 'disconnected'
  /** The per-peer byte bound was reached: the peer or the network is slower than we send. */
  | 'queueFull'
  /** Encoded message exceeds `maxFrameBytes`. */
  | 'tooLarge'
  /** msgpack could not encode the message. */
  | 'encodeFailed'
  /** Dropped by `setFaults` (tests). */
  | 'fault';

export interface PeerStats {
  readonly address: PeerAddress;
  /** Our outbound stream to the peer is authenticated (messages to it are being written). */
  readonly connected: boolean;
  /** The peer's stream to us is authenticated (we can hear from it). */
  readonly inboundConnected: boolean;
  /** Frames handed to the socket, and their bytes including headers. */
  readonly sentFrames: number;
  readonly sentBytes: number;
  /** `socket.write` calls; `sentFrames / writes` is the batching factor. */
  readonly writes: number;
  /** Bytes waiting for the next flush. */
  readonly queuedBytes: number;
  /** Outgoing messages dropped, total and by reason. */
  readonly dropped: number;
  readonly droppedBy: Readonly<Record<DropReason, number>>;
  /** Frames received from the peer (including those a fault then dropped), and their bytes. */
  readonly receivedFrames: number;
  readonly receivedBytes: number;
  /** Incoming messages dropped by `setFaults`. */
  readonly receivedDropped: number;
  /** Successful outbound handshakes; more than one means we reconnected. */
  readonly connects: number;
  /** `Date.now()` when we last heard from the peer (a frame or a completed handshake), or null. */
  readonly lastContact: number | null;
}

export interface TransportStats {
  readonly id: string;
  /** Bound address once started. */
  readonly listening: PeerAddress | null;
  readonly peers: Readonly<Record<string, PeerStats>>;
  /** Messages sent to ids that are not in the peer set. */
  readonly droppedUnknownPeer: number;
  /** Inbound connections refused (failed authentication or TLS, timeouts, malformed handshakes). */
  readonly refusedConnections: number;
  /** Refused connections being held open for `refusalDelayMs` before they are closed. */
  readonly heldRefusals: number;
}

/** Test-only message loss; each call replaces the previous setting. */
export interface Faults {
  /** Drop outgoing messages to these peers. */
  readonly dropTo?: readonly string[];
  /** Drop incoming messages from these peers. */
  readonly dropFrom?: readonly string[];
  /**
   * Drop only messages of these kinds (as the transport's `faultKind` names them, for
   * example `raft:appendResponse` or `keepalive`); absent or empty: every message.
   */
  readonly kinds?: readonly string[];
}
