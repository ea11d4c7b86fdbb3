/**
 * A real `rollcall server` process with every TLS listener (issue 19): the HTTP API and the
 * Consul API over HTTPS requiring client certificates, DNS over TLS requiring them too, an
 * https:// probe listener, and mutual-TLS peers. A refused handshake on any of them is one
 * warning in the node's log with the listener, the address and why, a flood from one source
 * one line, and each is counted in rollcall_tls_handshake_failures_total; the peer port
 * says why too. A node refuses to start with an expired or not-yet-valid certificate for
 * any listener, naming the flag and the file, and a SIGHUP onto an expired one is refused
 * with the old certificate kept.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort } from '../scripts/local-cluster.js';
import { type CertFiles, CertificateAuthority } from '../scripts/tls-certs.js';
import { waitFor } from './helpers/wait.js';

const DAY = 86_400_000;
const SECRET = 'tls-refusals-cluster-secret';

interface Material {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** One HTTPS GET: the status, body and server certificate, or the client's error code. */
function get(
  url: string,
  tls: { ca: Buffer; cert?: Buffer; key?: Buffer },
): Promise<{ status: number; body: string; fingerprint: string } | string> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: 5000, ...tls }, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

/** A TLS connection with this material, left to the server: resolves once the server has closed it. */
function handshake(port: number, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<void> {
  return new Promise((resolve) => {
    const socket = connectTls({ host: '127.0.0.1', port, servername: 'localhost', ...tls });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

function plain(port: number, text: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1', () => socket.write(text));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve());
  });
}

/** Runs `rollcall server` to completion (for nodes that must refuse to start). */
function runToExit(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI_PATH, 'server', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a node tells who its TLS listeners refused, and why', () => {
  let dir: string;
  let authority: CertificateAuthority;
  let ca: Buffer;
  let node: CertFiles;
  let client: Material;
  let foreign: Material;
  let expiredClient: Material;
  let expiredFiles: CertFiles;
  let futureFiles: CertFiles;
  let proc: ChildProcess;
  let exited: Promise<number | null>;
  const ports = { http: 0, peer: 0, consul: 0, dns: 0, probe: 0 };
  const lines: Record<string, unknown>[] = [];
  const logged = (pred: (l: Record<string, unknown>) => boolean) => lines.filter(pred);
  const refusedOn = (listener: string, reason?: string) =>
    logged(
      (l) =>
        l['level'] === 40 &&
        String(l['msg']).startsWith(`TLS handshake refused on ${listener}:`) &&
        (reason === undefined || l['reason'] === reason),
    );

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-tls-refusals-node-'));
    authority = await CertificateAuthority.create(path.join(dir, 'ca'));
    const other = await CertificateAuthority.create(path.join(dir, 'other'), 'Another CA');
    ca = await readFile(authority.certFile);
    // The node's certificate is copied so the SIGHUP test can replace it in place.
    const issued = await authority.issue('n1', { nodeId: 'n1', dnsNames: ['localhost'], ips: ['127.0.0.1'] });
    node = { cert: path.join(dir, 'node.pem'), key: path.join(dir, 'node-key.pem') };
    await copyFile(issued.cert, node.cert);
    await copyFile(issued.key, node.key);
    const read = async (f: CertFiles): Promise<Material> => ({
      cert: await readFile(f.cert),
      key: await readFile(f.key),
    });
    client = await read(await authority.issue('client'));
    foreign = await read(await other.issue('foreign', { commonName: 'foreign-client' }));
    expiredFiles = await authority.issue('expired', {
      nodeId: 'n1',
      ips: ['127.0.0.1'],
      notBefore: new Date(Date.now() - 10 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    futureFiles = await authority.issue('future', {
      nodeId: 'n1',
      ips: ['127.0.0.1'],
      notBefore: new Date(Date.now() + DAY),
      notAfter: new Date(Date.now() + 10 * DAY),
    });
    expiredClient = await read(expiredFiles);
    ports.peer = await freePort();
    ports.consul = await freePort();
    ports.dns = await freePort();
    ports.probe = await freePort();
    const tlsFlags = (prefix: string, caFlag: string) => [
      `--${prefix}-cert`,
      node.cert,
      `--${prefix}-key`,
      node.key,
      `--${caFlag}`,
      authority.certFile,
    ];
    proc = spawn(
      process.execPath,
      [
        CLI_PATH,
        'server',
        '--id',
        'n1',
        '--data',
        path.join(dir, 'n1'),
        '--listen',
        '127.0.0.1:0',
        '--peers',
        `n1=127.0.0.1:${ports.peer}`,
        '--cluster-secret',
        SECRET,
        ...tlsFlags('tls', 'tls-client-ca'),
        ...tlsFlags('peer-tls', 'peer-tls-ca'),
        '--consul-listen',
        `127.0.0.1:${ports.consul}`,
        ...tlsFlags('consul-tls', 'consul-tls-client-ca'),
        '--dns-listen',
        `127.0.0.1:${ports.dns}`,
        ...tlsFlags('dns-tls', 'dns-tls-client-ca'),
        '--probe-listen',
        `https://127.0.0.1:${ports.probe}`,
      ],
      { env: { ...process.env, ROLLCALL_READY_FD: '1' }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed['ready'] === true) ports.http = Number(parsed['http']);
        else lines.push(parsed);
      } catch {
        // not a log line
      }
    });
    await waitFor('the node is ready', () => ports.http > 0, 45_000);
  }, 90_000);

  afterAll(async () => {
    if (proc !== undefined && proc.exitCode === null) {
      proc.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  const metric = async (): Promise<string> => {
    const answer = await get(`https://127.0.0.1:${ports.http}/metrics`, { ca, ...client });
    if (typeof answer === 'string') throw new Error(`GET /metrics failed: ${answer}`);
    return answer.body;
  };
  const failures = (text: string, listener: string, reason: string): number => {
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`rollcall_tls_handshake_failures_total{listener="${listener}",reason="${reason}"} `));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  };

  it('logs one warning per refused client on the API, Consul, DNS and probe listeners, and counts each', async () => {
    const api = `https://127.0.0.1:${ports.http}/v1/cluster`;
    expect(await get(api, { ca, ...client })).toMatchObject({ status: 200 });
    expect(await get(api, { ca, ...foreign })).toBeTypeOf('string');
    expect(await get(api, { ca })).toBeTypeOf('string');
    expect(await get(api, { ca, ...expiredClient })).toBeTypeOf('string');
    expect(await get(`https://127.0.0.1:${ports.consul}/v1/status/leader`, { ca, ...foreign })).toBeTypeOf('string');
    expect(await get(`https://127.0.0.1:${ports.probe}/healthz`, { ca, ...foreign })).toBeTypeOf('string');
    await handshake(ports.dns, { ca, ...foreign });

    await waitFor(
      'every refusal is logged',
      () => logged((l) => String(l['msg']).startsWith('TLS handshake refused')).length >= 6,
    );
    expect(refusedOn('api', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toHaveLength(1);
    expect(refusedOn('api', 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')).toHaveLength(1);
    expect(refusedOn('api', 'CERT_HAS_EXPIRED')).toHaveLength(1);
    expect(refusedOn('consul', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toHaveLength(1);
    expect(refusedOn('probe', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toHaveLength(1);
    expect(refusedOn('dns', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toHaveLength(1);
    expect(refusedOn('api', 'CERT_HAS_EXPIRED')[0]).toMatchObject({
      node: 'n1',
      part: 'tls',
      listener: 'api',
      remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      detail: 'the client certificate has expired',
    });
    const text = await metric();
    expect(failures(text, 'api', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toBe(1);
    expect(failures(text, 'api', 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')).toBe(1);
    expect(failures(text, 'api', 'CERT_HAS_EXPIRED')).toBe(1);
    expect(failures(text, 'consul', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toBe(1);
    expect(failures(text, 'probe', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toBe(1);
    expect(failures(text, 'dns', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toBe(1);
  });

  it('plain HTTP sent again and again to the TLS port: one line, every one counted', async () => {
    for (let i = 0; i < 5; i++) await plain(ports.http, 'GET /v1/cluster HTTP/1.1\r\nhost: x\r\n\r\n');
    await waitFor('all five are counted', async () => failures(await metric(), 'api', 'ERR_SSL_HTTP_REQUEST') === 5);
    // However slow the machine, the later ones fall in the first line's interval or a
    // summary ("refused N more ..."), never a full line of their own.
    expect(refusedOn('api', 'ERR_SSL_HTTP_REQUEST')).toHaveLength(1);
    expect(refusedOn('api', 'ERR_SSL_HTTP_REQUEST')[0]!['detail']).toBe('plain HTTP sent to a TLS port');
  });

  it('the peer port: no certificate, an expired one and plain TCP are refused and say why, once per source', async () => {
    const peerRefusals = (tlsReason: string) =>
      logged((l) => l['msg'] === 'refused peer connection' && l['tlsReason'] === tlsReason);
    await handshake(ports.peer, { ca });
    await waitFor(
      'the refusal without a certificate is logged',
      () => peerRefusals('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE').length === 1,
    );
    // The peer port logs per source, whatever the reason: the expired one is counted for the summary.
    await handshake(ports.peer, { ca, ...expiredClient });
    await plain(ports.peer, 'hello');
    expect(peerRefusals('CERT_HAS_EXPIRED')).toHaveLength(0);
    expect(peerRefusals('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE')[0]).toMatchObject({
      code: 'TLS_HANDSHAKE',
      remote: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
      reason: 'the client presented no certificate, and one is required',
    });
    // Every one counted, whatever was logged.
    const counted = async () => {
      const text = await metric();
      return [
        failures(text, 'peer', 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE'),
        failures(text, 'peer', 'CERT_HAS_EXPIRED'),
      ];
    };
    await waitFor('the peer refusals are counted', async () => (await counted()).join() === '1,1');
    // Still serving.
    expect(await get(`https://127.0.0.1:${ports.http}/v1/cluster`, { ca, ...client })).toMatchObject({ status: 200 });
  });

  it('SIGHUP onto an expired certificate: refused for every listener, naming the file, the old one kept', async () => {
    const before = new X509Certificate(await readFile(node.cert)).fingerprint256;
    await copyFile(expiredFiles.cert, node.cert);
    await copyFile(expiredFiles.key, node.key);
    proc.kill('SIGHUP');
    const refusedReloads = () =>
      logged((l) => String(l['msg']).startsWith('TLS reload refused, keeping the previous certificate'));
    await waitFor('every set refuses the reload', () => refusedReloads().length === 4);
    expect(refusedReloads().map((l) => l['tls'])).toEqual(expect.arrayContaining(['api', 'peer', 'consul', 'dns']));
    for (const l of refusedReloads())
      expect(l).toMatchObject({ level: 50, file: node.cert, problem: expect.stringMatching(/expired at/) });
    const api = await get(`https://127.0.0.1:${ports.http}/v1/cluster`, { ca, ...client });
    const consul = await get(`https://127.0.0.1:${ports.consul}/v1/status/leader`, { ca, ...client });
    expect(api).toMatchObject({ status: 200, fingerprint: before });
    expect(consul).toMatchObject({ status: 200, fingerprint: before });
  });

  it('refuses to start with an expired or not-yet-valid certificate for any listener, naming flag and file', async () => {
    const base = ['--id', 'n9', '--listen', '127.0.0.1:0', '--peers', 'n9=127.0.0.1:0', '--cluster-secret', SECRET];
    const good = ['--tls-cert', node.cert, '--tls-key', node.key];
    const cases: { flag: string; file: string; args: string[] }[] = [
      {
        flag: '--tls-cert',
        file: futureFiles.cert,
        args: ['--tls-cert', futureFiles.cert, '--tls-key', futureFiles.key],
      },
      {
        flag: '--consul-tls-cert',
        file: expiredFiles.cert,
        args: [
          '--consul-listen',
          '127.0.0.1:0',
          '--consul-tls-cert',
          expiredFiles.cert,
          '--consul-tls-key',
          expiredFiles.key,
        ],
      },
      {
        flag: '--dns-tls-cert',
        file: expiredFiles.cert,
        args: ['--dns-listen', '127.0.0.1:0', '--dns-tls-cert', expiredFiles.cert, '--dns-tls-key', expiredFiles.key],
      },
      {
        flag: '--peer-tls-cert',
        file: expiredFiles.cert,
        args: [
          '--peer-tls-cert',
          expiredFiles.cert,
          '--peer-tls-key',
          expiredFiles.key,
          '--peer-tls-ca',
          authority.certFile,
        ],
      },
    ];
    // The node's own file was replaced by an expired one above: put a valid one back for the "good" API flags.
    const valid = await authority.issue('valid', { nodeId: 'n9', ips: ['127.0.0.1'] }, path.join(dir, 'valid'));
    good[1] = valid.cert;
    good[3] = valid.key;
    for (const [i, c] of cases.entries()) {
      const run = await runToExit([...base, '--data', path.join(dir, `n9-${i}`), ...(i === 0 ? [] : good), ...c.args]);
      expect(run.code, c.flag).toBe(2);
      expect(run.stderr, c.flag).toMatch(
        new RegExp(`${c.flag}: ${c.file}: the certificate for CN=n1 (expired at|is not valid yet)`),
      );
      const line = run.stdout.split('\n').find((l) => l.includes('TLS certificate refused'));
      expect(line, c.flag).toBeDefined();
      expect(JSON.parse(line!), c.flag).toMatchObject({ level: 50, setting: c.flag, file: c.file });
    }
  }, 60_000);
});
