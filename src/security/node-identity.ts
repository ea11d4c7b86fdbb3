/**
 * Which node a peer certificate speaks for. A node's peer certificate names its node id in
 * a URI subject alternative name, `rollcall://node/<id>` (the id percent-encoded as a URI
 * path segment), the way SPIFFE names a workload: a URI cannot be mistaken for a host name,
 * so the certificate of node `n2` is never also good for a host called `n2`, and one
 * certificate may still carry DNS and IP names for its addresses.
 *
 * The peer transport requires the id a peer claims in its handshake to be one its
 * certificate names (and a dialer, that the node it dialed presents such a certificate):
 * a node holding a certificate of the cluster's CA can speak only as itself.
 */

export const NODE_ID_URI_PREFIX = 'rollcall://node/';

/** The URI SAN a certificate for node `id` carries. */
export function nodeIdUri(id: string): string {
  return `${NODE_ID_URI_PREFIX}${encodeURIComponent(id)}`;
}

/**
 * The node ids in a certificate's subject alternative names, as Node's
 * `getPeerCertificate().subjectaltname` or `X509Certificate.subjectAltName` spells them
 * (`DNS:localhost, URI:rollcall://node/n1`; a name with special characters is quoted as a
 * JSON string).
 */
export function certificateNodeIds(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const ids: string[] = [];
  for (const entry of splitNames(subjectAltName)) {
    if (!entry.startsWith('URI:')) continue;
    let uri = entry.slice(4);
    if (uri.startsWith('"')) {
      try {
        uri = JSON.parse(uri) as string;
      } catch {
        continue;
      }
    }
    if (!uri.startsWith(NODE_ID_URI_PREFIX)) continue;
    try {
      const id = decodeURIComponent(uri.slice(NODE_ID_URI_PREFIX.length));
      if (id.length > 0) ids.push(id);
    } catch {
      // Not valid percent-encoding: names no node.
    }
  }
  return ids;
}

/** Splits at `, ` outside JSON-quoted names. */
function splitNames(names: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < names.length; i++) {
    const c = names[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted && names[i + 1] === ' ') {
      out.push(names.slice(start, i));
      start = i + 2;
      i++;
    }
  }
  out.push(names.slice(start));
  return out;
}
