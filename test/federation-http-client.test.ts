/**
 * FederationHttpClient (src/federation/http-client.ts): the connections to other datacenters,
 * against a real HTTPS server on loopback that requires client certificates, with
 * certificates from a throwaway CA (scripts/tls-certs.ts). The client presents its
 * --federation-tls-cert and trusts only --federation-tls-ca; without the certificate, or with
 * another CA, the handshake is refused (a TLS error); SIGHUP's reload puts a new certificate
 * in force for new requests while a stream under way goes on; a bad file keeps the old.
 */
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertFiles, CertificateAuthority } from '../scripts/tls-certs.js';
import { FederationHttpClient, isTlsError } from '../src/federation/http-client.js';
import { silentLogger } from '../src/log/index.js';
import { loadClientTlsMaterial, TlsStartError } from '../src/security/index.js';
import { waitFor } from './helpers/wait.js';
import { captureLogger } from './transport-harness.js';

let dir: string;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let server: Server;
let base: string;
let a: CertFiles;
let b: CertFiles;
/** Streams opened on /stream, written to on demand. */
const streams: import('node:http').ServerResponse[] = [];

const LOCAL = { dnsNames: ['localhost'], ips: ['127.0.0.1'] } as const;

async function fingerprint(file: string): Promise<string> {
  const { X509Certificate } = await import('node:crypto');
  return new X509Certificate(await readFile(file)).fingerprint256;
}

function get(
  client: FederationHttpClient,
  pathname: string,
): Promise<{ status: number; res: IncomingMessage; text: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const req = client.request('forward', new URL(pathname, base), { method: 'GET' }, (res) =>
      resolve({
        status: res.statusCode ?? 0,
        res,
        text: () =>
          new Promise((done, fail) => {
            let t = '';
            res.on('data', (c: Buffer) => (t += c.toString('utf8')));
            res.on('end', () => done(t));
            res.on('error', fail);
          }),
      }),
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rollcall-fed-client-'));
  ca = await CertificateAuthority.create(path.join(dir, 'ca'));
  otherCa = await CertificateAuthority.create(path.join(dir, 'other'), 'Another CA');
  const serverCert = await ca.issue('server', LOCAL);
  a = await ca.issue('node-a', { commonName: 'dc-a node' });
  b = await ca.issue('node-b', { commonName: 'dc-a node, rotated' });
  server = createServer(
    {
      cert: await readFile(serverCert.cert),
      key: await readFile(serverCert.key),
      ca: await readFile(ca.certFile),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate().fingerprint256;
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(`${peer}\n`);
        streams.push(res);
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(peer);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  for (const s of streams) s.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

describe('FederationHttpClient', () => {
  it('presents its certificate to an API that requires one, trusting only its CA', async () => {
    const client = new FederationHttpClient(loadClientTlsMaterial({ ca: ca.certFile, ...a }));
    try {
      const r = await get(client, '/who');
      expect(r.status).toBe(200);
      expect(await r.text()).toBe(await fingerprint(a.cert));
    } finally {
      client.close();
    }
  });

  it('without a client certificate, or trusting another CA, the handshake is refused: a TLS error', async () => {
    const noCert = new FederationHttpClient(loadClientTlsMaterial({ ca: ca.certFile, cert: null, key: null }));
    const wrongCa = new FederationHttpClient(loadClientTlsMaterial({ ca: otherCa.certFile, ...a }));
    const system = new FederationHttpClient();
    try {
      for (const client of [noCert, wrongCa, system]) {
        const err = await get(client, '/who').then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).not.toBeNull();
        expect(isTlsError(err)).toBe(true);
      }
    } finally {
      noCert.close();
      wrongCa.close();
      system.close();
    }
  });

  it('reload: new requests present the new certificate, a stream under way goes on; a bad file keeps the old', async () => {
    const live = { ca: ca.certFile, cert: path.join(dir, 'live.pem'), key: path.join(dir, 'live-key.pem') };
    await copyFile(a.cert, live.cert);
    await copyFile(a.key, live.key);
    const client = new FederationHttpClient(loadClientTlsMaterial(live));
    const log = captureLogger('info');
    try {
      const stream = await get(client, '/stream');
      const chunks: string[] = [];
      stream.res.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
      const first = await fingerprint(a.cert);
      await waitFor('the first chunk', () => chunks.join('') === `${first}\n`, 5_000, 10);

      await copyFile(b.cert, live.cert);
      await copyFile(b.key, live.key);
      expect(client.reload(log.logger)).toBe(true);
      expect(await (await get(client, '/who')).text()).toBe(await fingerprint(b.cert));
      // The stream opened before is still the same connection, still delivering.
      streams[streams.length - 1]!.write('after reload\n');
      await waitFor('a chunk after the reload', () => chunks.join('').endsWith('after reload\n'), 5_000, 10);
      expect(stream.res.destroyed).toBe(false);
      streams[streams.length - 1]!.end();
      await new Promise((resolve) => stream.res.once('end', resolve));

      // A key copied before its certificate: refused, the material in force stays.
      await copyFile(a.key, live.key);
      expect(client.reload(log.logger)).toBe(false);
      expect(await (await get(client, '/who')).text()).toBe(await fingerprint(b.cert));
      const line = log.records.find((r) => String(r['msg'] ?? '').startsWith('TLS reload refused'));
      expect(line).toMatchObject({ level: 50, tls: 'federation', file: live.key, setting: '--federation-tls-key' });
    } finally {
      client.close();
    }
  });

  it('an expired certificate stops the node at start, naming the flag and the file', async () => {
    const expired = await ca.issue('expired', {
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const start = () => FederationHttpClient.load({ ca: ca.certFile, ...expired }, silentLogger());
    expect(start).toThrow(TlsStartError);
    expect(start).toThrow(/expired/);
    try {
      start();
    } catch (err) {
      expect((err as TlsStartError).setting).toBe('--federation-tls-cert');
    }
  });
});
