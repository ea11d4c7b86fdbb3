/**
 * Opening a connection to a peer: plain TCP, or TLS whose server certificate must chain to
 * our CA (rejectUnauthorized, the default) and name the node we meant to dial, whatever
 * address it answers on. One place for the stream's dialer and the founding probe.
 */
import { connect, type Socket } from 'node:net';
import { type PeerCertificate, type SecureContext, connect as tlsConnect } from 'node:tls';
import { certificateNodeIds } from '../security/node-identity.js';
import type { PeerAddress } from './types.js';

export function dialPeer(address: PeerAddress, peerId: string, secureContext: SecureContext | null): Socket {
  const { host, port } = address;
  if (secureContext === null) return connect({ host, port });
  return tlsConnect({
    host,
    port,
    secureContext,
    checkServerIdentity: (_host: string, cert: PeerCertificate) => checkNodeIdentity(peerId, cert),
  });
}

/** A dialed peer's certificate must name the node we dialed (src/security/node-identity.ts). */
function checkNodeIdentity(peerId: string, cert: PeerCertificate): Error | undefined {
  const ids = certificateNodeIds(cert.subjectaltname);
  if (ids.includes(peerId)) return undefined;
  return new Error(
    `the TLS certificate names ${ids.length === 0 ? 'no node id' : `node ${ids.join(', ')}`}, not ${peerId}, the node we dialed`,
  );
}
