/**
 * Refused TLS handshakes are told to the operator (issue 19): a real node:https server
 * (what fastify serves HTTPS with) requiring client certificates, real certificates from
 * scripts/tls-certs.ts, real clients over loopback, and the HandshakeRefusals every TLS
 * listener of a node reports through. Each kind of refusal gives one warning with its
 * reason, a flood from one source one line and then a count, and the metric counts all.
 * The whole node (every listener, /metrics) is in tls-handshake-refusals-node.test.ts.
 */
import { readFile, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CertFiles, CertificateAuthority } from '../scripts/tls-certs.js';
import { describeHandshakeFailure, HandshakeRefusals } from '../src/security/index.js';
import { captureLogger } from './transport-harness.js';

const DAY = 86_400_000;

/** One HTTPS GET with exactly this TLS material: the status, or the client's error code. */
function get(port: number, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000, ...tls }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

/** Plain HTTP to the TLS port; resolves once the server has closed the connection. */
function plainHttp(port: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

const warnings = (records: readonly Record<string, unknown>[]) => records.filter((r) => r['level'] === 40);

describe('refused TLS handshakes on an HTTPS listener requiring client certificates', () => {
  const dir = path.join(tmpdir(), `rollcall-tls-refusals-${process.pid}`);
  let ca: Buffer;
  let server: CertFiles;
  let material: Record<'good' | 'expired' | 'notYet' | 'foreign', { cert: Buffer; key: Buffer }>;
  let authority: CertificateAuthority;
  const open: Server[] = [];
  const refusalLogs: HandshakeRefusals[] = [];

  beforeAll(async () => {
    authority = await CertificateAuthority.create(path.join(dir, 'ca'));
    const other = await CertificateAuthority.create(path.join(dir, 'other'), 'Another CA');
    ca = await readFile(authority.certFile);
    server = await authority.issue('server', { dnsNames: ['localhost'], ips: ['127.0.0.1'] });
    const read = async (f: CertFiles) => ({ cert: await readFile(f.cert), key: await readFile(f.key) });
    material = {
      good: await read(await authority.issue('client')),
      expired: await read(
        await authority.issue('client-expired', {
          commonName: 'expired-client',
          notBefore: new Date(Date.now() - 10 * DAY),
          notAfter: new Date(Date.now() - DAY),
        }),
      ),
      notYet: await read(
        await authority.issue('client-not-yet', {
          commonName: 'future-client',
          notBefore: new Date(Date.now() + DAY),
          notAfter: new Date(Date.now() + 10 * DAY),
        }),
      ),
      foreign: await read(await other.issue('client-foreign', { commonName: 'foreign-client' })),
    };
  }, 60_000);

  afterEach(async () => {
    for (const r of refusalLogs.splice(0)) r.close();
    await Promise.all(open.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A listener as the node makes one: requestCert + rejectUnauthorized with our CA, watched. */
  async function listen(
    refusals: HandshakeRefusals,
    files: { cert: Buffer; key: Buffer } | null = null,
  ): Promise<number> {
    const https = createServer(
      {
        cert: files?.cert ?? (await readFile(server.cert)),
        key: files?.key ?? (await readFile(server.key)),
        ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (_req, res) => res.end('ok'),
    );
    refusals.watch(https, 'api');
    open.push(https);
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
    return (https.address() as { port: number }).port;
  }

  function refusalLog(now?: () => number) {
    const captured = captureLogger('info');
    const refusals = new HandshakeRefusals({ logger: captured.logger, ...(now === undefined ? {} : { now }) });
    refusalLogs.push(refusals);
    return { ...captured, refusals };
  }

  it('logs each kind of refusal once, with the listener, the address and the reason, and counts it', async () => {
    const { refusals, records, raw } = refusalLog();
    const port = await listen(refusals);

    expect(await get(port, { ca, ...material.good })).toBe(200);
    expect(await get(port, { ca })).not.toBe(200);
    expect(await get(port, { ca, ...material.foreign })).not.toBe(200);
    expect(await get(port, { ca, ...material.expired })).not.toBe(200);
    expect(await get(port, { ca, ...material.notYet })).not.toBe(200);
    await plainHttp(port);

    const expected = [
      'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'CERT_HAS_EXPIRED',
      'CERT_NOT_YET_VALID',
      'ERR_SSL_HTTP_REQUEST',
    ];
    // The server hears of a refusal a moment after the client does.
    await expect.poll(() => warnings(records).length).toBe(expected.length);
    expect(warnings(records).map((r) => r['reason'])).toEqual(expected);
    for (const line of warnings(records)) {
      expect(line).toMatchObject({ part: 'tls', listener: 'api', remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
      expect(String(line['msg'])).toMatch(/^TLS handshake refused on api: /);
    }
    expect(warnings(records)[2]!['detail']).toBe('the client certificate has expired');
    expect(warnings(records)[4]!['detail']).toBe('plain HTTP sent to a TLS port');
    // Nothing but the warnings, and nothing of a key in them.
    expect(records).toHaveLength(expected.length);
    expect(raw.join('')).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
    expect(refusals.totals()).toEqual(expected.map((reason) => ({ labels: { listener: 'api', reason }, value: 1 })));
  });

  it('logs a flood from one source once per interval, then how many more there were', async () => {
    let now = 0;
    const { refusals, records } = refusalLog(() => now);
    const port = await listen(refusals);

    for (let i = 0; i < 5; i++) await plainHttp(port);
    await expect.poll(() => refusals.totals()[0]?.value).toBe(5);
    expect(warnings(records)).toHaveLength(1);

    // The interval ends: the next refusal brings the summary of the four held back.
    now = 10_000;
    await plainHttp(port);
    await expect.poll(() => refusals.totals()[0]?.value).toBe(6);
    expect(warnings(records)).toHaveLength(2);
    expect(warnings(records)[1]).toMatchObject({
      listener: 'api',
      source: '127.0.0.1',
      reason: 'ERR_SSL_HTTP_REQUEST',
      refused: 4,
    });
    expect(String(warnings(records)[1]!['msg'])).toMatch(
      /^refused 4 more TLS handshakes on api from 127\.0\.0\.1 \(ERR_SSL_HTTP_REQUEST\) in the last 10 s$/,
    );
    // The one after the summary is counted for the next; close() reports it rather than never.
    refusals.close();
    expect(warnings(records)).toHaveLength(3);
    expect(warnings(records)[2]).toMatchObject({ reason: 'ERR_SSL_HTTP_REQUEST', refused: 1 });
  });

  it('an expired server certificate: the client refuses it, and the server logs that the client left', async () => {
    const expiredServer = await authority.issue('server-expired', {
      ips: ['127.0.0.1'],
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const { refusals, records } = refusalLog();
    const port = await listen(refusals, {
      cert: await readFile(expiredServer.cert),
      key: await readFile(expiredServer.key),
    });
    expect(await get(port, { ca, ...material.good })).toBe('CERT_HAS_EXPIRED');
    // Node's client checks the certificate once the handshake is done and hangs up, without an
    // alert (curl sends one: ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED, "the client sent
    // the alert certificate expired").
    await expect.poll(() => warnings(records).length).toBe(1);
    expect(warnings(records)[0]).toMatchObject({
      listener: 'api',
      reason: 'ECONNRESET',
      detail: 'the client closed the connection during the handshake',
      remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    });
  });

  it('words a reason from the verification error first, then the error code; strange codes are OTHER', () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    expect(describeHandshakeFailure(reset, { authorizationError: 'CERT_HAS_EXPIRED' as unknown as Error })).toEqual({
      reason: 'CERT_HAS_EXPIRED',
      detail: 'the client certificate has expired',
    });
    expect(describeHandshakeFailure(reset, { authorizationError: null as unknown as Error }).reason).toBe('ECONNRESET');
    const alert = Object.assign(new Error('alert'), { code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' });
    expect(describeHandshakeFailure(alert, { authorizationError: null as unknown as Error })).toEqual({
      reason: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
      detail: "the client sent the alert unknown ca (it refused this side's certificate or settings)",
    });
    const odd = Object.assign(new Error('odd\nsecond line'), { code: 'not a code' });
    expect(describeHandshakeFailure(odd, { authorizationError: null as unknown as Error })).toEqual({
      reason: 'OTHER',
      detail: 'odd',
    });
  });
});
