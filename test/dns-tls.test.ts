/**
 * DNS over TLS (--dns-tls-*, RFC 7858) on the DNS port's TCP side, with real sockets and
 * certificates from a throwaway CA: answers inside TLS, plain TCP gets none, UDP stays
 * plain, and a new certificate (a SIGHUP reload) is what new connections see.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { decode, encode } from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CertFiles, CertificateAuthority } from '../scripts/tls-certs.js';
import { type DnsServer, startDnsServer } from '../src/dns/index.js';
import { silentLogger } from '../src/log/index.js';
import { loadTlsMaterial, secureContextOptions, serverTlsOptions } from '../src/security/index.js';
import { dataOf, queryPacket, queryUdp, tcpExchange } from './helpers/dns.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

let dir: string;
let authority: CertificateAuthority;
let server: CertFiles;
let dns: DnsServer;
let ca: Buffer;

/** One query over DNS over TLS; resolves with the answer and the certificate the server showed. */
function queryTls(port: number, name: string): Promise<{ reply: ReturnType<typeof decode>; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const query = encode(queryPacket(name, 'A', { id: 9 }));
      const framed = Buffer.alloc(2 + query.length);
      framed.writeUInt16BE(query.length, 0);
      query.copy(framed, 2);
      socket.write(framed);
    });
    let got = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) {
        resolve({ reply: decode(got.subarray(2)), fingerprint: socket.getPeerCertificate().fingerprint256 });
        socket.destroy();
      }
    });
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rollcall-dns-tls-'));
  authority = await CertificateAuthority.create(dir);
  server = await authority.issue('dns', { dnsNames: ['localhost'], ips: ['127.0.0.1'] });
  ca = await readFile(authority.certFile);
  const node = await InMemoryNodeApi.create();
  node.apply({ type: 'register', namespace: 'default', service: 'web', id: 'w1', address: '10.0.0.1', port: 8080 });
  dns = await startDnsServer({
    node,
    logger: silentLogger(),
    listen: { host: '127.0.0.1', port: 0 },
    tls: serverTlsOptions(loadTlsMaterial({ ...server, ca: null })),
  });
}, 60_000);

afterAll(async () => {
  await dns?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DNS over TLS', () => {
  it('answers inside TLS on the TCP side; plain TCP gets nothing; UDP stays plain', async () => {
    const { reply } = await queryTls(dns.port, 'web.service.consul');
    expect(dataOf(reply.answers, 'A')).toEqual(['10.0.0.1']);
    expect(await tcpExchange(dns.port, [encode(queryPacket('web.service.consul', 'A'))], 1000).catch(() => [])).toEqual(
      [],
    );
    expect(dataOf((await queryUdp(dns.port, 'web.service.consul', 'A')).answers, 'A')).toEqual(['10.0.0.1']);
  });

  it('setSecureContext: new connections see the new certificate', async () => {
    const renewed = await authority.issue('dns-renewed', { dnsNames: ['localhost'], ips: ['127.0.0.1'] });
    dns.setSecureContext(secureContextOptions(loadTlsMaterial({ ...renewed, ca: null })));
    const { X509Certificate } = await import('node:crypto');
    const { fingerprint, reply } = await queryTls(dns.port, 'web.service.consul');
    expect(fingerprint).toBe(new X509Certificate(await readFile(renewed.cert)).fingerprint256);
    expect(dataOf(reply.answers, 'A')).toEqual(['10.0.0.1']);
  });
});
