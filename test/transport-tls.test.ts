/**
 * Mutual TLS on the peer transport (issue 19): real sockets, certificates from a throwaway
 * CA made here (scripts/tls-certs.ts). A node's certificate names its id as a URI SAN
 * rollcall://node/<id>; a peer whose certificate names another node, or that has no
 * certificate of the cluster's CA, is refused and logged (rate-limited like every refusal),
 * and the HMAC handshake still runs inside TLS.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect as tlsConnect } from 'node:tls';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { type CertFiles, CertificateAuthority, type ClusterTls, createClusterTls } from '../scripts/tls-certs.js';
import type { PeerTlsOptions } from '../src/transport/index.js';
import { connectedTo, Harness, type TestNode, waitFor } from './transport-harness.js';

interface Msg {
  readonly seq: number;
}

const harness = new Harness();
let dir: string;
let pki: ClusterTls;
/** A certificate for `b` from a CA the cluster does not trust. */
let foreign: CertFiles;

async function tlsOf(files: CertFiles, ca = pki.ca): Promise<PeerTlsOptions> {
  return { cert: await readFile(files.cert), key: await readFile(files.key), ca: await readFile(ca) };
}

function refusals(node: TestNode<Msg>, code: string): Array<Record<string, unknown>> {
  return node.log.records.filter((r) => r['msg'] === 'refused peer connection' && r['code'] === code);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rollcall-transport-tls-'));
  pki = await createClusterTls(dir, ['a', 'b', 'c']);
  const other = await CertificateAuthority.create(path.join(dir, 'other'), 'Another CA');
  foreign = await other.issue('b', { nodeId: 'b', ips: ['127.0.0.1'] });
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await harness.closeAll();
});

/** Two nodes that know each other. */
async function pair(
  aTls: PeerTlsOptions | undefined,
  bTls: PeerTlsOptions | undefined,
  bOptions: { refusalLogIntervalMs?: number } = {},
) {
  const a = await harness.node<Msg>('a', aTls === undefined ? {} : { tls: aTls });
  const b = await harness.node<Msg>('b', {
    ...(bTls === undefined ? {} : { tls: bTls }),
    ...bOptions,
    peers: new Map([['a', a.address]]),
  });
  a.transport.setPeers(new Map([['b', b.address]]));
  return { a, b };
}

describe('PeerTransport over mutual TLS', () => {
  it('connects both ways and delivers messages, the HMAC handshake inside TLS', async () => {
    const { a, b } = await pair(await tlsOf(pki.nodes.a!), await tlsOf(pki.nodes.b!));
    await waitFor('a and b connected both ways', () => connectedTo(a, 'b') && connectedTo(b, 'a'));
    a.transport.send('b', { seq: 1 });
    b.transport.send('a', { seq: 2 });
    await waitFor('both messages delivered', () => a.received.length === 1 && b.received.length === 1);
    expect(b.received[0]).toEqual({ from: 'a', message: { seq: 1 } });
    expect(a.received[0]).toEqual({ from: 'b', message: { seq: 2 } });
  });

  it('refuses a peer whose certificate names another node, logs it once per interval, and says why on both sides', async () => {
    // b holds c's certificate (a good one of the cluster's CA) and claims to be b.
    const { a, b } = await pair(await tlsOf(pki.nodes.a!), await tlsOf(pki.nodes.c!));
    await waitFor('a refuses b more than once', () => a.transport.stats().refusedConnections >= 3);
    const lines = refusals(a, 'TLS_IDENTITY');
    // Rate-limited: retries are counted, not each logged.
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, claimedId: 'b' });
    expect(String(lines[0]!['reason'])).toContain('names node c, not b');
    // a's own dials to b: b's certificate does not name b, so a will not talk to it either.
    await waitFor('a refuses to talk to b', () =>
      a.log.records.some(
        (r) =>
          r['msg'] === 'handshake with peer failed; will retry' && String(r['reason']).includes('names node c, not b'),
      ),
    );
    expect(connectedTo(a, 'b')).toBe(false);
    expect(connectedTo(b, 'a')).toBe(false);
    b.transport.send('a', { seq: 1 });
    expect(a.received).toEqual([]);
  });

  it('keeps the cluster secret as a second factor: a good certificate with the wrong secret is refused', async () => {
    const a = await harness.node<Msg>('a', { tls: await tlsOf(pki.nodes.a!) });
    const b = await harness.node<Msg>('b', {
      tls: await tlsOf(pki.nodes.b!),
      secret: 'not the cluster secret',
      peers: new Map([['a', a.address]]),
    });
    await waitFor('a refuses b for its proof', () => refusals(a, 'AUTH_FAILED').length > 0);
    expect(refusals(a, 'AUTH_FAILED')[0]).toMatchObject({ claimedId: 'b' });
    expect(connectedTo(b, 'a')).toBe(false);
  });

  it('refuses a peer with a certificate of another CA, and one speaking plain TCP', async () => {
    const { a: a1, b: foreignB } = await pair(
      await tlsOf(pki.nodes.a!),
      await tlsOf(foreign, path.join(dir, 'other', 'ca.pem')),
    );
    await waitFor('a refuses the foreign certificate', () => refusals(a1, 'TLS_HANDSHAKE').length > 0);
    expect(connectedTo(foreignB, 'a')).toBe(false);
    await harness.closeAll();

    const { a: a2, b: plainB } = await pair(await tlsOf(pki.nodes.a!), undefined);
    await waitFor('a refuses plain TCP', () => refusals(a2, 'TLS_HANDSHAKE').length > 0);
    expect(connectedTo(plainB, 'a')).toBe(false);
    expect(connectedTo(a2, 'b')).toBe(false);
  });

  it('setTls: new connections get the new certificate, established ones carry on', async () => {
    const { a, b } = await pair(await tlsOf(pki.nodes.a!), await tlsOf(pki.nodes.b!));
    await waitFor('connected', () => connectedTo(a, 'b') && connectedTo(b, 'a'));
    const connectsBefore = b.transport.stats().peers['a']!.connects;
    const ca = await CertificateAuthority.load(dir);
    const renewed = await ca.issue('a-renewed', { nodeId: 'a', ips: ['127.0.0.1'] }, path.join(dir, 'renewed'));
    a.transport.setTls(await tlsOf(renewed));

    // The stream b opened before the reload is still the one in use.
    b.transport.send('a', { seq: 7 });
    await waitFor('delivered on the old connection', () => a.received.some((r) => r.message.seq === 7));
    expect(b.transport.stats().peers['a']!.connects).toBe(connectsBefore);

    // A new connection to a sees the renewed certificate.
    const b2 = await tlsOf(pki.nodes.b!);
    const presented = await new Promise<string>((resolve, reject) => {
      const socket = tlsConnect(
        {
          host: '127.0.0.1',
          port: a.address.port,
          ca: b2.ca,
          cert: b2.cert,
          key: b2.key,
          checkServerIdentity: () => undefined,
        },
        () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        },
      );
      socket.on('error', reject);
    });
    const { X509Certificate } = await import('node:crypto');
    expect(presented).toBe(new X509Certificate(await readFile(renewed.cert)).fingerprint256);
  });

  it('setTls refuses material OpenSSL will not pair, keeping the old', async () => {
    const a = await harness.node<Msg>('a', { tls: await tlsOf(pki.nodes.a!) });
    const mismatched = { ...(await tlsOf(pki.nodes.a!)), key: await readFile(pki.nodes.b!.key) };
    expect(() => a.transport.setTls(mismatched)).toThrow();
    const plain = await harness.node<Msg>('p');
    expect(() => plain.transport.setTls(mismatched)).toThrow(/cannot be turned on/);
  });
});
