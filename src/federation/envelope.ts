/**
 * Authenticated envelopes for gossip between datacenters.
 *
 *   outer  = msgpack [ENVELOPE_VERSION, signed, mac]
 *   signed = msgpack { v, dc, id, addr, boot, seq, ts, inc, to?, body }
 *   mac    = HMAC-SHA256(key, LABEL ‖ signed),  key = HKDF-SHA256(secret, SALT, INFO, 32)
 *
 * The sender's datacenter and id sit inside the signed bytes, so changing either breaks the
 * MAC; the version sits both outside (to refuse a future format before any work) and inside
 * (so a downgrade cannot be spoofed). The key is derived rather than the raw secret so that
 * the same `--federation-secret` could key other uses later without their MACs being
 * interchangeable. `to` names the recipient when the sender knows it (all but the first
 * contact with a seed address), so a message captured on its way to one node is refused by
 * every other. Replays to the same node are caught by `ReplayGuard` (boot + sequence) and,
 * across a restart of the receiver, by the timestamp window.
 *
 * What this does not do: encrypt (gossip is readable on the wire), or tell datacenters apart
 * cryptographically — every holder of the secret can speak for any datacenter. The secret is
 * the trust boundary; put TLS in front of the listener for confidentiality.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

import { decode, encode } from '../codec/index.js';
import { isAddress, isDatacenterName, isMemberId } from './config.js';
import type { MemberRef, RefusalReason } from './types.js';

export const ENVELOPE_VERSION = 1;
const MAC_BYTES = 32;
const LABEL = Buffer.from(`rollcall-federation-v${ENVELOPE_VERSION}\0`);
const HKDF_SALT = 'rollcall-federation';
const HKDF_INFO = 'gossip-mac-v1';

export interface EnvelopeHeader {
  readonly datacenter: string;
  readonly id: string;
  /** Where the sender takes replies: its advertised address, not the socket's source. */
  readonly address: string;
  /** The sender's incarnation when its process started; constant for that process. */
  readonly boot: number;
  /** Per-process sequence number, +1 on every message. */
  readonly seq: number;
  /** The sender's wall clock, ms since the epoch. */
  readonly ts: number;
  /** The sender's current incarnation (its latest refutation travels on every message). */
  readonly incarnation: number;
  readonly to: MemberRef | null;
}

export type OpenResult =
  | { readonly kind: 'ok'; readonly header: EnvelopeHeader; readonly body: unknown }
  | { readonly kind: 'refused'; readonly reason: RefusalReason; readonly sender: MemberRef | null };

/** Derives the MAC key once; seals and opens envelopes. */
export class EnvelopeSealer {
  private readonly key: Buffer;

  constructor(secret: string) {
    if (secret.length === 0) throw new RangeError('federation secret must not be empty');
    this.key = Buffer.from(hkdfSync('sha256', secret, HKDF_SALT, HKDF_INFO, 32));
  }

  seal(header: EnvelopeHeader, body: unknown): Uint8Array {
    const signed = encode({
      v: ENVELOPE_VERSION,
      dc: header.datacenter,
      id: header.id,
      addr: header.address,
      boot: header.boot,
      seq: header.seq,
      ts: header.ts,
      inc: header.incarnation,
      ...(header.to ? { to: [header.to.datacenter, header.to.id] } : {}),
      body,
    });
    return encode([ENVELOPE_VERSION, signed, this.mac(signed)]);
  }

  /** Checks format and MAC only; freshness and replay are the receiver's (it holds the state). */
  open(bytes: Uint8Array, maxBytes: number): OpenResult {
    if (bytes.byteLength > maxBytes) return refuse('too-large');
    let outer: unknown;
    try {
      outer = decode(bytes);
    } catch {
      return refuse('malformed');
    }
    if (!Array.isArray(outer) || outer.length !== 3) return refuse('malformed');
    const [version, signed, mac] = outer as unknown[];
    if (version !== ENVELOPE_VERSION) return refuse(typeof version === 'number' ? 'unsupported-version' : 'malformed');
    if (!(signed instanceof Uint8Array) || !(mac instanceof Uint8Array)) return refuse('malformed');
    // Constant time; timingSafeEqual throws on unequal lengths, so check that first.
    if (mac.byteLength !== MAC_BYTES || !timingSafeEqual(this.mac(signed), mac)) return refuse('bad-mac');
    let inner: unknown;
    try {
      inner = decode(signed);
    } catch {
      return refuse('malformed');
    }
    const header = parseHeader(inner);
    if (header === null) return refuse('malformed');
    if ((inner as { v: unknown }).v !== ENVELOPE_VERSION) return refuse('unsupported-version');
    return { kind: 'ok', header, body: (inner as { body: unknown }).body };
  }

  private mac(signed: Uint8Array): Buffer {
    return createHmac('sha256', this.key).update(LABEL).update(signed).digest();
  }
}

function refuse(reason: RefusalReason): OpenResult {
  return { kind: 'refused', reason, sender: null };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function parseHeader(inner: unknown): EnvelopeHeader | null {
  if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) return null;
  const h = inner as Record<string, unknown>;
  if (!isDatacenterName(h.dc) || !isMemberId(h.id) || !isAddress(h.addr)) return null;
  if (!isCount(h.boot) || !isCount(h.seq) || !isCount(h.ts) || !isCount(h.inc)) return null;
  let to: MemberRef | null = null;
  if (h.to !== undefined) {
    if (!Array.isArray(h.to) || h.to.length !== 2 || !isDatacenterName(h.to[0]) || !isMemberId(h.to[1])) return null;
    to = { datacenter: h.to[0], id: h.to[1] };
  }
  return { datacenter: h.dc, id: h.id, address: h.addr, boot: h.boot, seq: h.seq, ts: h.ts, incarnation: h.inc, to };
}
