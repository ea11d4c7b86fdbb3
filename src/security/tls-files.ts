/**
 * TLS material read from files: a certificate (chain), its private key and, where the
 * other side must prove itself too, a CA bundle. Everything is checked before it is used,
 * at start and at every reload, so a bad file is refused with its name rather than found
 * out by the first client that cannot connect:
 *
 * - every file must be readable and hold what it should (PEM certificates, a private key);
 * - every certificate in the chain and in the CA bundle must be valid now (an expired or
 *   not-yet-valid one is refused: a node would otherwise serve a certificate every client
 *   rejects, or trust a CA that signs nothing valid);
 * - the key must belong to the first certificate of the chain.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';

/** Where one listener's (or the peer transport's) TLS material lives. */
export interface TlsFiles {
  /** PEM certificate chain: this side's certificate first, then any intermediates. */
  readonly cert: string;
  /** PEM private key of the first certificate. */
  readonly key: string;
  /** PEM CA bundle the other side's certificate must chain to; null: the other side is not asked for one. */
  readonly ca: string | null;
}

/** A TLS file that cannot be used; `file` names it, and the message says why. */
export class TlsMaterialError extends Error {
  override readonly name = 'TlsMaterialError';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

export interface TlsMaterial {
  readonly files: TlsFiles;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer | null;
  /** The certificate this side presents (the chain's first). */
  readonly leaf: X509Certificate;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function read(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsMaterialError(
      file,
      `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** Every PEM certificate in `pem`, parsed, in order; refuses a file with none or a broken one. */
function certificates(file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('utf8').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new TlsMaterialError(file, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TlsMaterialError(file, `certificate ${i + 1} cannot be parsed (${(err as Error).message})`);
    }
  });
}

/** Refuses a certificate that is not valid at `now`, naming the file and the certificate. */
export function checkValidity(file: string, cert: X509Certificate, now: Date): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  const who = `the certificate for ${cert.subject.replace(/\n/g, ', ')}`;
  if (now < from) throw new TlsMaterialError(file, `${who} is not valid yet (valid from ${from.toISOString()})`);
  if (now > to) throw new TlsMaterialError(file, `${who} expired at ${to.toISOString()}`);
}

function privateKey(file: string, pem: Buffer): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new TlsMaterialError(
      file,
      `holds no usable private key (${(err as Error).message}; an encrypted key is not supported)`,
    );
  }
}

/**
 * Reads and checks one set of TLS files. Throws TlsMaterialError naming the first file
 * that cannot be used.
 */
export function loadTlsMaterial(files: TlsFiles, now: Date = new Date()): TlsMaterial {
  const cert = read(files.cert);
  const chain = certificates(files.cert, cert);
  for (const c of chain) checkValidity(files.cert, c, now);
  const key = read(files.key);
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(privateKey(files.key, key))) {
    throw new TlsMaterialError(files.key, `this key does not belong to the certificate in ${files.cert}`);
  }
  let ca: Buffer | null = null;
  if (files.ca !== null) {
    ca = read(files.ca);
    for (const c of certificates(files.ca, ca)) checkValidity(files.ca, c, now);
  }
  return { files, cert, key, ca, leaf };
}

/**
 * Where the TLS material of a client side lives (the federation links: --federation-tls-*):
 * a CA bundle the servers' certificates must chain to (null: the system's store) and,
 * optionally, a certificate and key to present to servers that ask for one.
 */
export interface ClientTlsFiles {
  readonly ca: string | null;
  /** PEM certificate chain presented to a server that asks for one; null (with `key`): none. */
  readonly cert: string | null;
  readonly key: string | null;
}

export interface ClientTlsMaterial {
  readonly files: ClientTlsFiles;
  /** null: trust the system's store. */
  readonly ca: Buffer | null;
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
  /** The certificate presented (the chain's first); null: none. */
  readonly leaf: X509Certificate | null;
}

/**
 * Reads and checks a client side's TLS files as `loadTlsMaterial` does a listener's (every
 * certificate valid now, the key the certificate's). Throws TlsMaterialError naming the
 * first file that cannot be used.
 */
export function loadClientTlsMaterial(files: ClientTlsFiles, now: Date = new Date()): ClientTlsMaterial {
  if (files.cert !== null && files.key !== null) {
    const m = loadTlsMaterial({ cert: files.cert, key: files.key, ca: files.ca }, now);
    return { files, ca: m.ca, cert: m.cert, key: m.key, leaf: m.leaf };
  }
  let ca: Buffer | null = null;
  if (files.ca !== null) {
    ca = read(files.ca);
    for (const c of certificates(files.ca, ca)) checkValidity(files.ca, c, now);
  }
  return { files, ca, cert: null, key: null, leaf: null };
}

/** What `tls.createSecureContext` and `server.setSecureContext` take. */
export function secureContextOptions(m: TlsMaterial): SecureContextOptions {
  return { cert: m.cert, key: m.key, ...(m.ca === null ? {} : { ca: m.ca }) };
}

/**
 * Options for a TLS (or HTTPS) server: with a CA, clients must present a certificate that
 * chains to it (the handshake fails otherwise); without, none is asked for.
 */
export function serverTlsOptions(
  m: TlsMaterial,
): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  return { ...secureContextOptions(m), requestCert: m.ca !== null, rejectUnauthorized: m.ca !== null };
}

/** For logs: which certificate is in use, never the key. */
export function describeCertificate(m: TlsMaterial): Record<string, string> {
  return {
    cert: m.files.cert,
    subject: m.leaf.subject.replace(/\n/g, ', '),
    notAfter: new Date(m.leaf.validTo).toISOString(),
    fingerprint256: m.leaf.fingerprint256,
  };
}
