/**
 * A throwaway certificate authority and the certificates of a local cluster, for
 * `npm start -- --tls` and the TLS tests: PEM files in one directory, keys 0600.
 *
 * Keys come from node:crypto (RSA 2048); node-forge only builds and signs the X.509
 * certificates, so nothing here needs the openssl command. A node's certificate names
 * its id as a URI SAN `rollcall://node/<id>` (src/security/node-identity.ts) beside
 * `localhost` and `127.0.0.1`, and serves as both its server and client certificate.
 *
 * @example
 * ```ts
 * const tls = await createClusterTls('./data/tls', ['n1', 'n2', 'n3']);
 * // tls.ca, tls.nodes.n1.cert, tls.nodes.n1.key, tls.client.cert, tls.client.key
 * ```
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import forge from 'node-forge';
import { loadTlsMaterial, nodeIdUri, TlsMaterialError } from '../src/security/index.js';

const DAY_MS = 86_400_000;

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface IssueOptions {
  /** The node id named as a URI SAN (rollcall://node/<id>); absent: none. */
  readonly nodeId?: string;
  /** Common name (default: the node id, or the file name). */
  readonly commonName?: string;
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

interface KeyPair {
  readonly forgePrivate: forge.pki.rsa.PrivateKey;
  readonly forgePublic: forge.pki.rsa.PublicKey;
  readonly pem: string;
}

function newKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return {
    forgePrivate: forge.pki.privateKeyFromPem(pem),
    forgePublic: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }) as string),
    pem,
  };
}

/** A positive serial number, random as RFC 5280 recommends. */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

export class CertificateAuthority {
  private constructor(
    readonly dir: string,
    /** The CA certificate's file (what clients pass as --cacert / tls.ca). */
    readonly certFile: string,
    private readonly cert: forge.pki.Certificate,
    private readonly key: forge.pki.rsa.PrivateKey,
  ) {}

  /** A new CA in `dir` (ca.pem, ca-key.pem). */
  static async create(dir: string, name = 'Rollcall throwaway CA', validDays = 365): Promise<CertificateAuthority> {
    await mkdir(dir, { recursive: true });
    const keys = newKeyPair();
    const cert = forge.pki.createCertificate();
    cert.publicKey = keys.forgePublic;
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(Date.now() - 60_000);
    cert.validity.notAfter = new Date(Date.now() + validDays * DAY_MS);
    const subject = [{ name: 'commonName', value: name }];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(keys.forgePrivate, forge.md.sha256.create());
    const certFile = path.join(dir, 'ca.pem');
    await writeFile(certFile, forge.pki.certificateToPem(cert));
    await writeFile(path.join(dir, 'ca-key.pem'), keys.pem, { mode: 0o600 });
    return new CertificateAuthority(dir, certFile, cert, keys.forgePrivate);
  }

  /** The CA `create` wrote to `dir` before. */
  static async load(dir: string): Promise<CertificateAuthority> {
    const certFile = path.join(dir, 'ca.pem');
    const cert = forge.pki.certificateFromPem(await readFile(certFile, 'utf8'));
    const key = forge.pki.privateKeyFromPem(await readFile(path.join(dir, 'ca-key.pem'), 'utf8'));
    return new CertificateAuthority(dir, certFile, cert, key);
  }

  /**
   * Issues a certificate for both server and client use, written as `<name>.pem` and
   * `<name>-key.pem` in `dir` (the CA's by default).
   */
  async issue(name: string, options: IssueOptions = {}, dir: string = this.dir): Promise<CertFiles> {
    await mkdir(dir, { recursive: true });
    const keys = newKeyPair();
    const cert = forge.pki.createCertificate();
    cert.publicKey = keys.forgePublic;
    cert.serialNumber = serial();
    cert.validity.notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
    cert.validity.notAfter = options.notAfter ?? new Date(Date.now() + 30 * DAY_MS);
    cert.setSubject([{ name: 'commonName', value: options.commonName ?? options.nodeId ?? name }]);
    cert.setIssuer(this.cert.subject.attributes);
    const altNames: { type: number; value?: string; ip?: string }[] = [];
    if (options.nodeId !== undefined) altNames.push({ type: 6, value: nodeIdUri(options.nodeId) });
    for (const dns of options.dnsNames ?? []) altNames.push({ type: 2, value: dns });
    for (const ip of options.ips ?? []) altNames.push({ type: 7, ip });
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
      { name: 'authorityKeyIdentifier', keyIdentifier: this.cert.generateSubjectKeyIdentifier().getBytes() },
    ]);
    cert.sign(this.key, forge.md.sha256.create());
    const files = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}-key.pem`) };
    await writeFile(files.cert, forge.pki.certificateToPem(cert));
    await writeFile(files.key, keys.pem, { mode: 0o600 });
    return files;
  }
}

export interface ClusterTls {
  readonly dir: string;
  /** The CA certificate: every node's --peer-tls-ca, a client's --cacert. */
  readonly ca: string;
  /** Per node id: its certificate for the HTTP API, the Consul API and its peers. */
  readonly nodes: Readonly<Record<string, CertFiles>>;
  /** A client certificate (for --tls-client-ca): `rollcall --cert --key`, curl --cert --key. */
  readonly client: CertFiles;
}

/** The names every local node certificate carries beside its node id. */
const LOCAL_NAMES = { dnsNames: ['localhost'], ips: ['127.0.0.1', '::1'] } as const;

/** A new CA and a certificate per node and one for a client, in `dir`. */
export async function createClusterTls(dir: string, ids: readonly string[]): Promise<ClusterTls> {
  const ca = await CertificateAuthority.create(dir);
  const nodes: Record<string, CertFiles> = {};
  for (const id of ids) nodes[id] = await ca.issue(`node-${id}`, { nodeId: id, ...LOCAL_NAMES });
  const client = await ca.issue('client', { commonName: 'rollcall client' });
  return { dir, ca: ca.certFile, nodes, client };
}

/**
 * The cluster TLS of `dir` if every file is there and valid now, else a new one (npm start
 * keeps its CA across runs, so a `curl --cacert` set up once goes on working).
 */
export async function ensureClusterTls(
  dir: string,
  ids: readonly string[],
): Promise<{ readonly tls: ClusterTls; readonly created: boolean }> {
  const existing: ClusterTls = {
    dir,
    ca: path.join(dir, 'ca.pem'),
    nodes: Object.fromEntries(
      ids.map((id) => [id, { cert: path.join(dir, `node-${id}.pem`), key: path.join(dir, `node-${id}-key.pem`) }]),
    ),
    client: { cert: path.join(dir, 'client.pem'), key: path.join(dir, 'client-key.pem') },
  };
  try {
    for (const files of [...Object.values(existing.nodes), existing.client])
      loadTlsMaterial({ ...files, ca: existing.ca });
    return { tls: existing, created: false };
  } catch (err) {
    if (!(err instanceof TlsMaterialError)) throw err;
  }
  return { tls: await createClusterTls(dir, ids), created: true };
}

/**
 * A cluster's TLS as `createClusterTls` makes it, and from the same CA a certificate for
 * each of `servers` other local servers (the etcd members the benchmark runs beside
 * Rollcall): `localhost`, `127.0.0.1` and `::1`, no node id, both key usages (etcd uses
 * a member's certificate as server and as peer client).
 */
export async function createClusterTlsWithServers(
  dir: string,
  ids: readonly string[],
  servers: readonly string[],
): Promise<{ readonly tls: ClusterTls; readonly servers: Readonly<Record<string, CertFiles>> }> {
  const ca = await CertificateAuthority.create(dir);
  const nodes: Record<string, CertFiles> = {};
  for (const id of ids) nodes[id] = await ca.issue(`node-${id}`, { nodeId: id, ...LOCAL_NAMES });
  const client = await ca.issue('client', { commonName: 'rollcall client' });
  const others: Record<string, CertFiles> = {};
  for (const name of servers) others[name] = await ca.issue(`server-${name}`, { commonName: name, ...LOCAL_NAMES });
  return { tls: { dir, ca: ca.certFile, nodes, client }, servers: others };
}
