/**
 * Fitting a response into the size a transport allows: 512 bytes over UDP, or the payload
 * size the client advertises with EDNS (RFC 6891); 65535 over TCP (RFC 1035 §4.2.2).
 *
 * In order, the first that fits:
 * 1. the whole response;
 * 2. every answer without the additional records (RFC 2181 §9: extra data that does not
 *    fit is no reason for TC; the client can resolve SRV targets itself, addr names answer);
 * 3. over UDP: as many answers as fit, each with its additional records, and the TC flag
 *    set, so the client asks again over TCP (RFC 1035 §4.2.1) for more;
 *    over TCP: as many answers as fit, without additional records and without TC, as
 *    Consul's trimTCPResponse does. TCP is the client's last resort (there is no bigger
 *    transport to retry on), and a resolver that sees TC over TCP may fail the lookup or
 *    retry for ever, when what it got is a fair random subset of the service already
 *    (lookup.ts samples at random and answer.ts shuffles).
 *
 * dns-packet does not compress names, so a response holds fewer records than Consul's would
 * in the same size: about six SRV records with their A records in 512 bytes, and about a
 * thousand SRV records (without their A records) in 65,535.
 */
import { type Answer, encode, encodingLength, type Packet, TRUNCATED_RESPONSE } from 'dns-packet';

export const UDP_DEFAULT_LIMIT = 512;
/** The most we accept to send over UDP whatever a client advertises: large datagrams fragment. */
export const UDP_MAX_LIMIT = 4096;
export const TCP_LIMIT = 65535;

/** A response with its three record sections present. */
export interface ResponsePacket extends Packet {
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

/** How a response that still does not fit is cut: `tc` (UDP) or `trim` (TCP), as above. */
export type Cut = 'tc' | 'trim';

/** Encodes `packet`, made to fit `limit` bytes as above. */
export function encodeWithin(packet: ResponsePacket, limit: number, cut: Cut = 'tc'): Buffer {
  const whole = encodingLength(packet);
  if (whole <= limit) return encodeSized(packet, whole);
  const opt = packet.additionals.filter((r) => r.type === 'OPT');
  const bare: ResponsePacket = { ...packet, additionals: opt };
  const bareSize = encodingLength(bare);
  if (bareSize <= limit) return encodeSized(bare, bareSize);

  const extra = cut === 'tc' ? packet.additionals.filter((r) => r.type !== 'OPT') : [];
  const flags = cut === 'tc' ? (packet.flags ?? 0) | TRUNCATED_RESPONSE : (packet.flags ?? 0);
  const withFirst = (k: number, authorities: Answer[]): ResponsePacket => {
    const answers = packet.answers.slice(0, k);
    const targets = new Set(answers.map(targetOf).filter((t) => t !== null));
    return {
      ...packet,
      flags,
      answers,
      authorities,
      additionals: [...extra.filter((r) => targets.has(r.name)), ...opt],
    };
  };
  // Invariant: withFirst(lo) fits, withFirst(hi) does not (hi = all answers: shown above).
  let lo = 0;
  let hi = packet.answers.length;
  if (encodingLength(withFirst(0, packet.authorities)) > limit) {
    // Not even the header, question and authority fit (only with a tiny UDP limit): little else to say.
    const bareTc = withFirst(0, []);
    return encodeSized(bareTc, encodingLength(bareTc));
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (encodingLength(withFirst(mid, packet.authorities)) <= limit) lo = mid;
    else hi = mid;
  }
  const fitted = withFirst(lo, packet.authorities);
  return encodeSized(fitted, encodingLength(fitted));
}

function targetOf(r: Answer): string | null {
  return r.type === 'SRV' ? r.data.target : null;
}

function encodeSized(packet: Packet, size: number): Buffer {
  return encode(packet, Buffer.allocUnsafe(size), 0);
}
