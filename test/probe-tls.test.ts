/**
 * The probe listener over HTTPS (an https:// --probe-listen): it serves the HTTP API's
 * certificate, key and client CA, as etcd serves an https --listen-metrics-urls with its
 * client TLS. Real worker thread (loaded from the build), real sockets, certificates from a
 * throwaway CA made here: the right CA works; plain HTTP, a wrong CA and, with a client
 * CA, a prober without a certificate are refused; a reload serves new connections the new
 * certificate, and a thread started again after a crash serves it too.
 *
 * Needs the compiled build: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CertFiles, CertificateAuthority } from '../scripts/tls-certs.js';
import { silentLogger } from '../src/log/index.js';
import { loadTlsMaterial, type TlsMaterial } from '../src/security/index.js';
import type { ProbeAnswer, ProbeListener } from '../src/server/probes/index.js';
import { waitFor } from './helpers/wait.js';

const BUILT = pathToFileURL(path.resolve('dist/src/server/probes/index.js')).href;

const READY: ProbeAnswer = {
  status: 200,
  body: {
    ready: true,
    node: 'n1',
    leader: 'n1',
    role: 'leader',
    term: 1,
    commitIndex: 1,
    appliedIndex: 1,
    lag: 0,
    reasons: [],
  },
};

let dir: string;
let authority: CertificateAuthority;
let stranger: CertificateAuthority;
let server: CertFiles;
let renewed: CertFiles;
let client: CertFiles;
let ca: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rollcall-probe-tls-'));
  authority = await CertificateAuthority.create(path.join(dir, 'ca'));
  stranger = await CertificateAuthority.create(path.join(dir, 'stranger'));
  server = await authority.issue('n1', { nodeId: 'n1', ips: ['127.0.0.1'] });
  renewed = await authority.issue('n1-renewed', { nodeId: 'n1', ips: ['127.0.0.1'] });
  client = await authority.issue('prober', { commonName: 'prober' });
  ca = await readFile(authority.certFile);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly fingerprint: string;
}

/** One GET over a fresh TLS connection, with exactly the material given. */
function httpsGet(url: string, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: 5000, ...tls }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), fingerprint }),
      );
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function plainGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

const fingerprintOf = async (file: string) => new X509Certificate(await readFile(file)).fingerprint256;

describe('the probe listener over HTTPS', () => {
  let listener: ProbeListener | null = null;

  afterEach(async () => {
    await listener?.close();
    listener = null;
  });

  async function start(tls: TlsMaterial): Promise<string> {
    const { ProbeListener: Built } = (await import(BUILT)) as typeof import('../src/server/probes/index.js');
    listener = await Built.start({
      host: '127.0.0.1',
      port: 0,
      nodeId: 'n1',
      readiness: async () => READY,
      logger: silentLogger(),
      tls,
    });
    expect(listener.url).toBe(`https://127.0.0.1:${listener.port}`);
    return listener.url;
  }

  it('serves the certificate it is given; plain HTTP and a client that does not trust it are refused', async () => {
    const url = await start(loadTlsMaterial({ cert: server.cert, key: server.key, ca: null }));
    const ok = await httpsGet(`${url}/healthz`, { ca });
    expect(ok).toMatchObject({ status: 200, body: { ok: true, node: 'n1' } });
    expect(ok.fingerprint).toBe(await fingerprintOf(server.cert));
    await waitFor('readiness published', async () => (await httpsGet(`${url}/readyz`, { ca })).status === 200);
    await expect(httpsGet(`${url}/healthz`, { ca: await readFile(stranger.certFile) })).rejects.toThrow(
      /self-signed|unable to verify|certificate/i,
    );
    // A plain HTTP request to the TLS port gets no HTTP answer.
    await expect(plainGet(`http://127.0.0.1:${listener!.port}/healthz`)).rejects.toThrow();
  });

  it('with a client CA, a prober must present a certificate that chains to it', async () => {
    const url = await start(loadTlsMaterial({ cert: server.cert, key: server.key, ca: authority.certFile }));
    const withCert = await httpsGet(`${url}/healthz`, {
      ca,
      cert: await readFile(client.cert),
      key: await readFile(client.key),
    });
    expect(withCert.status).toBe(200);
    await expect(httpsGet(`${url}/healthz`, { ca })).rejects.toThrow();
  });

  it('a reload serves new connections the new certificate, and so does a thread started again', async () => {
    const url = await start(loadTlsMaterial({ cert: server.cert, key: server.key, ca: null }));
    expect((await httpsGet(`${url}/healthz`, { ca })).fingerprint).toBe(await fingerprintOf(server.cert));
    listener!.setTls(loadTlsMaterial({ cert: renewed.cert, key: renewed.key, ca: null }));
    const want = await fingerprintOf(renewed.cert);
    await waitFor('the new certificate on new connections', async () => {
      return (await httpsGet(`${url}/healthz`, { ca })).fingerprint === want;
    });
    // The thread ends as an uncaught error would end it; its replacement starts with the reloaded set.
    await (listener as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    const served = await waitFor('the replacement to serve', async () => {
      try {
        return await httpsGet(`${url}/healthz`, { ca });
      } catch {
        return undefined;
      }
    });
    expect(served.fingerprint).toBe(want);
  });

  it('a plain listener cannot be handed TLS on a reload', async () => {
    const { ProbeListener: Built } = (await import(BUILT)) as typeof import('../src/server/probes/index.js');
    listener = await Built.start({
      host: '127.0.0.1',
      port: 0,
      nodeId: 'n1',
      readiness: async () => READY,
      logger: silentLogger(),
    });
    expect(listener.url).toBe(`http://127.0.0.1:${listener.port}`);
    expect(() => listener!.setTls(loadTlsMaterial({ cert: server.cert, key: server.key, ca: null }))).toThrow(
      /plain HTTP/,
    );
    expect(await plainGet(`${listener.url}/healthz`)).toBe(200);
  });
});
