/**
 * TLS material and settings (src/security): what is refused at start and at reload, and
 * how a peer certificate names its node. Certificates from a throwaway CA made here.
 */
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertFiles, CertificateAuthority } from '../scripts/tls-certs.js';
import { silentLogger } from '../src/log/index.js';
import {
  certificateNodeIds,
  loadTlsMaterial,
  nodeIdUri,
  ReloadableTls,
  readTlsSettings,
  type TlsMaterial,
  TlsMaterialError,
  TlsReloader,
} from '../src/security/index.js';
import { captureLogger } from './transport-harness.js';

const DAY = 86_400_000;
let dir: string;
let authority: CertificateAuthority;
let good: CertFiles;
let other: CertFiles;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rollcall-security-'));
  authority = await CertificateAuthority.create(dir);
  good = await authority.issue('good', { nodeId: 'n1', dnsNames: ['localhost'], ips: ['127.0.0.1'] });
  other = await authority.issue('other', { nodeId: 'n2' });
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const refusal = (fn: () => unknown): TlsMaterialError => {
  try {
    fn();
  } catch (err) {
    if (err instanceof TlsMaterialError) return err;
    throw err;
  }
  throw new Error('not refused');
};

describe('loadTlsMaterial', () => {
  it('reads a certificate, its key and a CA', () => {
    const m = loadTlsMaterial({ ...good, ca: authority.certFile });
    expect(m.leaf.subjectAltName).toContain(nodeIdUri('n1'));
    expect(m.ca).not.toBeNull();
  });

  it('refuses an expired and a not-yet-valid certificate, naming the file', async () => {
    const expired = await authority.issue('expired', {
      nodeId: 'n1',
      notBefore: new Date(Date.now() - 3 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const e = refusal(() => loadTlsMaterial({ ...expired, ca: null }));
    expect(e.file).toBe(expired.cert);
    expect(e.message).toMatch(new RegExp(`^${expired.cert}: the certificate for CN=n1 expired at \\d{4}-`));
    const future = await authority.issue('future', {
      nodeId: 'n1',
      notBefore: new Date(Date.now() + DAY),
      notAfter: new Date(Date.now() + 3 * DAY),
    });
    const f = refusal(() => loadTlsMaterial({ ...future, ca: null }));
    expect(f.file).toBe(future.cert);
    expect(f.problem).toMatch(/is not valid yet \(valid from /);
    // The same files are fine at a time they are valid.
    expect(() => loadTlsMaterial({ ...future, ca: null }, new Date(Date.now() + 2 * DAY))).not.toThrow();
  });

  it('refuses a key of another certificate, a missing file, a file without a certificate, an expired CA', async () => {
    expect(refusal(() => loadTlsMaterial({ cert: good.cert, key: other.key, ca: null })).file).toBe(other.key);
    expect(
      refusal(() => loadTlsMaterial({ cert: path.join(dir, 'nope.pem'), key: good.key, ca: null })).problem,
    ).toMatch(/cannot read it \(ENOENT\)/);
    expect(refusal(() => loadTlsMaterial({ cert: good.key, key: good.key, ca: null })).problem).toMatch(
      /no PEM certificate/,
    );
    const notAKey = path.join(dir, 'not-a-key.pem');
    await writeFile(notAKey, 'hello');
    expect(refusal(() => loadTlsMaterial({ cert: good.cert, key: notAKey, ca: null })).file).toBe(notAKey);
    expect(
      refusal(() => loadTlsMaterial({ ...good, ca: authority.certFile }, new Date(Date.now() + 400 * DAY))).file,
    ).toBe(good.cert);
  });
});

describe('certificateNodeIds', () => {
  it('reads rollcall://node/<id> URI names and nothing else', () => {
    expect(certificateNodeIds('DNS:localhost, IP Address:127.0.0.1, URI:rollcall://node/n1')).toEqual(['n1']);
    expect(certificateNodeIds(`URI:${nodeIdUri('a b,c')}, DNS:n2, URI:spiffe://x/n3`)).toEqual(['a b,c']);
    expect(certificateNodeIds('URI:"rollcall://node/n%2C1", URI:rollcall://node/n2')).toEqual(['n,1', 'n2']);
    expect(certificateNodeIds('DNS:n1')).toEqual([]);
    expect(certificateNodeIds(undefined)).toEqual([]);
    expect(certificateNodeIds('URI:rollcall://node/')).toEqual([]);
  });

  it('agrees with what a generated certificate says', async () => {
    const { readFile } = await import('node:fs/promises');
    expect(certificateNodeIds(new X509Certificate(await readFile(good.cert)).subjectAltName)).toEqual(['n1']);
  });
});

describe('readTlsSettings', () => {
  const fail = (setting: string, message: string): never => {
    throw new Error(`${setting}: ${message}`);
  };
  const read = (flags: Record<string, string>) => readTlsSettings((k) => flags[k], fail);

  it('is off without flags, and takes each listener on its own', () => {
    expect(read({})).toEqual({ api: null, consul: null, dns: null, peer: null });
    expect(read({ 'tls-cert': 'c', 'tls-key': 'k' }).api).toEqual({ cert: 'c', key: 'k', ca: null });
    expect(read({ 'consul-tls-cert': 'c', 'consul-tls-key': 'k', 'consul-tls-client-ca': 'a' }).consul).toEqual({
      cert: 'c',
      key: 'k',
      ca: 'a',
    });
    expect(read({ 'peer-tls-cert': 'c', 'peer-tls-key': 'k', 'peer-tls-ca': 'a' }).peer).toEqual({
      cert: 'c',
      key: 'k',
      ca: 'a',
    });
  });

  it('names the flag that is missing', () => {
    expect(() => read({ 'tls-cert': 'c' })).toThrow('--tls-key: is required with --tls-cert');
    expect(() => read({ 'tls-client-ca': 'a' })).toThrow('--tls-cert: is required with --tls-client-ca');
    expect(() => read({ 'dns-tls-key': 'k' })).toThrow('--dns-tls-cert: is required with --dns-tls-key');
    expect(() => read({ 'peer-tls-cert': 'c', 'peer-tls-key': 'k' })).toThrow(
      /--peer-tls-ca: is required with --peer-tls-cert/,
    );
  });
});

describe('TlsReloader', () => {
  it('applies good material, keeps the old on a bad file and logs the file', async () => {
    const files = { cert: path.join(dir, 'live.pem'), key: path.join(dir, 'live-key.pem'), ca: null };
    await copyFile(good.cert, files.cert);
    await copyFile(good.key, files.key);
    const applied: TlsMaterial[] = [];
    const log = captureLogger('info');
    const api = new ReloadableTls('api', files, loadTlsMaterial(files));
    api.onReload((m) => applied.push(m));
    const reloader = new TlsReloader(log.logger, [api]);
    expect(reloader.reload()).toEqual({ reloaded: ['api'], refused: [] });
    expect(applied).toHaveLength(1);

    // A key copied before its certificate: the pair does not match, nothing is applied.
    await copyFile(other.key, files.key);
    expect(reloader.reload()).toEqual({ reloaded: [], refused: ['api'] });
    expect(applied).toHaveLength(1);
    expect(api.material).toBe(applied[0]);
    const line = log.records.find((r) => r['msg'] !== undefined && String(r['msg']).startsWith('TLS reload refused'));
    expect(line).toMatchObject({ level: 50, tls: 'api', file: files.key, setting: '--tls-key' });
  });

  it('says so when there is nothing to reload', () => {
    expect(new TlsReloader(silentLogger(), []).reload()).toEqual({ reloaded: [], refused: [] });
  });
});
