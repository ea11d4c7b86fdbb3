import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { type ClusterClaim, parseClaim } from './cluster-identity.js';
import { TransportError } from './errors.js';
import type { FoundingState } from './founding-probe.js';

/**
 * The connection handshake, as pure functions over decoded messages. The socket plumbing
 * lives in `inbound-connection.ts` (acceptor) and `peer-connection.ts` (dialer).
 *
 *   acceptor -> dialer   { t: 'challenge', v, id: acceptorId, nonce: Na, cid? | joining? }
 *   dialer   -> acceptor { t: 'hello', id: dialerId, nonce: Nd, cid? | joining?, ask?,
 *                          mac: HMAC(secret, "dialer" | Na | dialerId | acceptorId) }
 *   acceptor -> dialer   { t: 'welcome', mac: HMAC(secret, "acceptor" | Nd | dialerId | acceptorId),
 *                          founding? }
 *
 * Both sides prove knowledge of the secret over a nonce the other side chose, so neither
 * proof can be replayed on a later connection. Labels keep the two proofs from being
 * interchangeable (a node cannot be used as an oracle to answer its own challenge), and
 * ids are length-prefixed so that ("ab", "c") and ("a", "bc") MAC differently.
 *
 * `cid` is the sender's cluster id, absent when it has none; `joining: true` marks a node
 * started with --join that has none yet (cluster-identity.ts). Builds before them ignore
 * both fields, and a node without an id that is not joining sends neither.
 *
 * `ask: 'founding'` makes the connection a founding probe (founding-probe.ts): the acceptor
 * answers in the welcome's `founding` and the dialer hangs up. Builds before it ignore both.
 *
 * Only the handshake is authenticated: frames after it are neither signed nor encrypted.
 * That is enough to keep a misconfigured or foreign node out of the cluster; it is not a
 * defence against an on-path attacker: for that, the transport runs inside mutual TLS
 * (`tls` option, --peer-tls-*; docs/security.md).
 */

export const PROTOCOL_VERSION = 1;
export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;
/** Node ids are short names; the cap bounds what an unauthenticated peer can make us log. */
export const MAX_NODE_ID_LENGTH = 256;
/**
 * Frame limit before authentication. Handshake messages are ~150 bytes; the small cap
 * keeps a stranger from making us buffer `maxFrameBytes` (64 MiB) per connection.
 */
export const HANDSHAKE_MAX_FRAME_BYTES = 1024;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 2_000;

export interface Challenge extends ClusterClaim {
  readonly t: 'challenge';
  readonly v: number;
  readonly id: string;
  readonly nonce: Uint8Array;
}

export interface Hello extends ClusterClaim {
  readonly t: 'hello';
  readonly id: string;
  readonly nonce: Uint8Array;
  readonly mac: Uint8Array;
  /** A founding probe (founding-probe.ts): answer in the welcome, then expect a hang-up. */
  readonly ask?: 'founding';
}

export interface Welcome {
  readonly t: 'welcome';
  readonly mac: Uint8Array;
  /** The answer to a founding probe. */
  readonly founding?: FoundingState;
}

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

type Role = 'dialer' | 'acceptor';

function proof(role: Role, secret: string, nonce: Uint8Array, dialerId: string, acceptorId: string): Buffer {
  const hmac = createHmac('sha256', secret);
  hmac.update(`rollcall-transport-v${PROTOCOL_VERSION} ${role}\0`);
  hmac.update(nonce);
  for (const id of [dialerId, acceptorId]) {
    const bytes = Buffer.from(id, 'utf8');
    const length = Buffer.allocUnsafe(2);
    length.writeUInt16BE(bytes.length, 0);
    hmac.update(length);
    hmac.update(bytes);
  }
  return hmac.digest();
}

/** What the dialer sends: proof over the acceptor's nonce. */
export function dialerProof(secret: string, acceptorNonce: Uint8Array, dialerId: string, acceptorId: string): Buffer {
  return proof('dialer', secret, acceptorNonce, dialerId, acceptorId);
}

/** What the acceptor sends back: proof over the dialer's nonce. */
export function acceptorProof(secret: string, dialerNonce: Uint8Array, dialerId: string, acceptorId: string): Buffer {
  return proof('acceptor', secret, dialerNonce, dialerId, acceptorId);
}

/** Constant-time comparison; `timingSafeEqual` throws on unequal lengths, so check first. */
export function macMatches(expected: Buffer, received: Uint8Array): boolean {
  return received.byteLength === expected.byteLength && timingSafeEqual(expected, received);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNodeId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_NODE_ID_LENGTH;
}

function isBytes(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.byteLength === length;
}

function protocolError(expected: string): TransportError {
  return new TransportError('PROTOCOL', `expected a well-formed ${expected} handshake message`);
}

export function parseChallenge(value: unknown): Challenge | TransportError {
  if (!isRecord(value) || value['t'] !== 'challenge') return protocolError('challenge');
  const { v, id, nonce } = value;
  if (v !== PROTOCOL_VERSION) {
    return new TransportError('PROTOCOL', `peer speaks transport protocol ${String(v)}, we speak ${PROTOCOL_VERSION}`);
  }
  const claim = parseClaim(value);
  if (!isNodeId(id) || !isBytes(nonce, NONCE_BYTES) || claim === null) return protocolError('challenge');
  return { t: 'challenge', v, id, nonce, ...claim };
}

export function parseHello(value: unknown): Hello | TransportError {
  if (!isRecord(value) || value['t'] !== 'hello') return protocolError('hello');
  const { id, nonce, mac } = value;
  const claim = parseClaim(value);
  if (!isNodeId(id) || !isBytes(nonce, NONCE_BYTES) || !isBytes(mac, MAC_BYTES) || claim === null)
    return protocolError('hello');
  // Another question (a later build's) is ignored like any field we do not know.
  return { t: 'hello', id, nonce, mac, ...claim, ...(value['ask'] === 'founding' ? { ask: 'founding' } : {}) };
}

/** The id a hello claims, if any, for logging a refusal even when the rest is malformed. */
export function claimedId(value: unknown): string | undefined {
  if (!isRecord(value)) return undefined;
  const id = value['id'];
  return typeof id === 'string' ? id.slice(0, MAX_NODE_ID_LENGTH) : undefined;
}

export function parseWelcome(value: unknown): Welcome | TransportError {
  if (!isRecord(value) || value['t'] !== 'welcome') return protocolError('welcome');
  const { mac } = value;
  if (!isBytes(mac, MAC_BYTES)) return protocolError('welcome');
  return { t: 'welcome', mac };
}
