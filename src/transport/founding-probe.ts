/**
 * The founding probe: a one-shot question a node about to found a cluster asks each peer
 * before it writes anything (src/node/founding-guard.ts): "is your cluster past its
 * founding?". A member whose data directory was wiped and that is started again as a
 * founding member would otherwise bootstrap a fresh log and vote again in terms it already
 * voted in (etcd refuses the same start: "member X has already been bootstrapped").
 *
 * It rides on the handshake (handshake.ts), authenticated like any connection:
 *
 *   acceptor -> prober   challenge                                  (as always)
 *   prober   -> acceptor hello { ..., ask: 'founding' }
 *   acceptor -> prober   welcome { mac, founding: { pastFounding, term, lastIndex, snapshotIndex,
 *                                            started?, clusterVersion? } }
 *
 * and the prober hangs up: the connection never carries messages, and the acceptor neither
 * reports it as the prober's stream nor lets it replace one. A build before the probe
 * ignores `ask` and welcomes without `founding`: the prober reads that as "no answer" (an
 * older peer cannot say, and must not stop a founding), and hangs up the stream it opened.
 */
import type { SecureContext } from 'node:tls';

import type { ClusterIdentity } from './cluster-identity.js';
import { createCodec } from './codec.js';
import { dialPeer } from './dial.js';
import { errnoOf, TransportError } from './errors.js';
import { FramedSocket } from './framed-socket.js';
import {
  acceptorProof,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  dialerProof,
  HANDSHAKE_MAX_FRAME_BYTES,
  type Hello,
  macMatches,
  newNonce,
  parseChallenge,
  parseWelcome,
} from './handshake.js';
import type { PeerAddress } from './types.js';

/** What a node says about its own log when a peer asks (the `founding` field of a welcome). */
export interface FoundingState {
  /**
   * The node's cluster has gone past its founding: it has seen a term above the founding
   * term, or holds a snapshot. Invariant: entries beyond the founding ones are only ever
   * appended by a leader, and there is no leader in the founding term (a campaign starts
   * the next term), so a log past its founding entries implies a term past it too.
   */
  readonly pastFounding: boolean;
  readonly term: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  /**
   * The asker is a current member recorded as started in this node's applied state (the
   * started-member record, cluster version 6: src/node/member-publication.ts). Absent from
   * builds before the record.
   */
  readonly started?: boolean;
  /** This node's cluster version (src/registry/version.ts); absent from builds before the record. */
  readonly clusterVersion?: number;
}

/** Term of the founding entries (raft/bootstrap.ts): every founding member starts there. */
export const FOUNDING_TERM = 1;

/** The answer a node gives from its durable state (and, given, what it knows of the asker). */
export function foundingStateOf(
  term: number,
  lastIndex: number,
  snapshotIndex: number,
  asker?: { readonly started: boolean; readonly clusterVersion: number },
): FoundingState {
  const state = { pastFounding: term > FOUNDING_TERM || snapshotIndex > 0, term, lastIndex, snapshotIndex };
  return asker === undefined ? state : { ...state, started: asker.started, clusterVersion: asker.clusterVersion };
}

/** The `founding` field of a welcome, or null when it is absent or malformed. */
export function parseFoundingState(value: unknown): FoundingState | null {
  if (typeof value !== 'object' || value === null) return null;
  const { pastFounding, term, lastIndex, snapshotIndex, started, clusterVersion } = value as Record<string, unknown>;
  const count = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (typeof pastFounding !== 'boolean' || !count(term) || !count(lastIndex) || !count(snapshotIndex)) return null;
  if (!(started === undefined || typeof started === 'boolean')) return null;
  if (!(clusterVersion === undefined || (count(clusterVersion) && clusterVersion >= 1))) return null;
  return {
    pastFounding,
    term,
    lastIndex,
    snapshotIndex,
    ...(started === undefined ? {} : { started }),
    ...(clusterVersion === undefined ? {} : { clusterVersion }),
  };
}

/** How one probe ended. */
export type FoundingProbeResult =
  /** The peer answered. */
  | { readonly kind: 'answered'; readonly state: FoundingState }
  /** The peer authenticated but does not know the question (an older build). */
  | { readonly kind: 'unanswered' }
  /** Nothing listens at the address (ECONNREFUSED): the peer is down or not started yet. */
  | { readonly kind: 'down' }
  /**
   * No answer: a timeout, a network error, or a peer that refused us (another cluster id,
   * secret or CA: not a member of the cluster we would found).
   */
  | { readonly kind: 'failed'; readonly error: TransportError };

export interface FoundingProbeOptions {
  readonly selfId: string;
  readonly peerId: string;
  readonly address: PeerAddress;
  readonly secret: string;
  /** The cluster the prober would found: peers of another cluster refuse the handshake. */
  readonly cluster: ClusterIdentity;
  /** With mutual TLS (as the transport's `tls`); null: plain TCP. */
  readonly secureContext: SecureContext | null;
  /** Connect + handshake + answer. Default: the handshake's 2 s. */
  readonly timeoutMs?: number;
}

/** Asks one peer whether its cluster is past its founding. Never throws. */
export function probeFounding(options: FoundingProbeOptions): Promise<FoundingProbeResult> {
  const { selfId, peerId, secret, cluster, secureContext } = options;
  const { host, port } = options.address;
  const codec = createCodec();
  const socket = dialPeer(options.address, peerId, secureContext);
  return new Promise((resolve) => {
    let result: FoundingProbeResult | null = null;
    const settle = (r: FoundingProbeResult) => {
      result ??= r;
      connection.fail(null);
    };
    const failWith = (code: TransportError['code'], message: string) =>
      settle({ kind: 'failed', error: new TransportError(code, message) });
    const decode = (frame: Buffer): unknown => {
      const decoded = codec.decode(frame);
      if (decoded.ok) return decoded.value;
      settle({ kind: 'failed', error: decoded.error });
      return undefined;
    };
    let nonce: Buffer | null = null;
    const onWelcome = (frame: Buffer) => {
      const value = decode(frame);
      const welcome = parseWelcome(value);
      if (welcome instanceof TransportError) return settle({ kind: 'failed', error: welcome });
      if (nonce === null || !macMatches(acceptorProof(secret, nonce, selfId, peerId), welcome.mac))
        return failWith('AUTH_FAILED', `${peerId} could not prove it knows the cluster secret`);
      const founding = (value as Record<string, unknown>)['founding'];
      if (founding === undefined) return settle({ kind: 'unanswered' });
      const state = parseFoundingState(founding);
      if (state === null) return failWith('PROTOCOL', `${peerId} sent a malformed founding answer`);
      settle({ kind: 'answered', state });
    };
    const onChallenge = (frame: Buffer) => {
      const challenge = parseChallenge(decode(frame));
      if (result !== null) return;
      if (challenge instanceof TransportError) return settle({ kind: 'failed', error: challenge });
      if (challenge.id !== peerId) return failWith('AUTH_FAILED', `dialed ${peerId} but ${challenge.id} answered`);
      const mismatch = cluster.check(peerId, challenge);
      if (mismatch !== null) return settle({ kind: 'failed', error: mismatch });
      nonce = newNonce();
      const hello: Hello = {
        t: 'hello',
        id: selfId,
        nonce,
        mac: dialerProof(secret, challenge.nonce, selfId, peerId),
        ...cluster.wire,
        ask: 'founding',
      };
      const encoded = codec.encode(hello);
      if (encoded instanceof TransportError) return settle({ kind: 'failed', error: encoded });
      connection.setFrameHandler(onWelcome);
      connection.write([encoded]);
    };
    const timeoutMs = options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const timer = setTimeout(
      () => failWith('HANDSHAKE_TIMEOUT', `no answer from ${peerId} at ${host}:${port} within ${timeoutMs} ms`),
      timeoutMs,
    );
    const connection = new FramedSocket(socket, `${host}:${port}`, HANDSHAKE_MAX_FRAME_BYTES, onChallenge, (error) => {
      clearTimeout(timer);
      if (result === null) {
        if (errnoOf(error) === 'ECONNREFUSED') result = { kind: 'down' };
        else
          result = {
            kind: 'failed',
            error: error ?? new TransportError('CONNECTION_CLOSED', `${peerId} hung up during the handshake`),
          };
      }
      resolve(result);
    });
  });
}
