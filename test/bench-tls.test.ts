/**
 * `npm run bench -- --tls` (scripts/bench/tls.ts): the figures from its samples, the
 * order of its runs, and the load generator over TLS against a real node:https server
 * (one handshake per connection, none counted in the run). No benchmark runs here.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientTlsOf } from '../scripts/bench/http-json.js';
import { runLoad, targetOf } from '../scripts/bench/loadgen.js';
import { costPercentOf, keptShare, slotOrder, type TlsSample, tlsFigures } from '../scripts/bench/tls.js';
import { CertificateAuthority } from '../scripts/tls-certs.js';

function sample(
  system: TlsSample['system'],
  variant: TlsSample['variant'],
  round: number,
  throughput: number,
  cpuUsPerOp: number,
  workload = 'write-leader',
): TlsSample {
  return {
    system,
    variant,
    workload,
    round,
    throughput,
    p50: 1,
    p99: 10,
    cpuUsPerOp,
    ok: throughput,
    errors: 0,
    connectionsOpened: 64,
  };
}

describe('bench --tls figures', () => {
  // Rollcall keeps 80 % and 60 % of its throughput over TLS in the two rounds, etcd 50 % and 70 %.
  const samples = [
    sample('rollcall', 'plain', 0, 1000, 200),
    sample('rollcall', 'tls', 0, 800, 260),
    sample('rollcall', 'plain', 1, 500, 220),
    sample('rollcall', 'tls', 1, 300, 300),
    sample('etcd', 'plain', 0, 400, 400),
    sample('etcd', 'tls', 0, 200, 600),
    sample('etcd', 'plain', 1, 200, 420),
    sample('etcd', 'tls', 1, 140, 580),
  ];

  it('takes TLS / plain per round, then the median of the pairs', () => {
    expect(keptShare(samples, 'rollcall', 'write-leader')).toBeCloseTo(0.7);
    expect(keptShare(samples, 'etcd', 'write-leader')).toBeCloseTo(0.6);
    const cost = costPercentOf(samples)['write-leader']!;
    expect(cost.rollcall).toBeCloseTo(30);
    expect(cost.etcd).toBeCloseTo(40);
  });

  it('pairs only the runs of one round', () => {
    const unpaired = samples.filter((s) => !(s.system === 'rollcall' && s.variant === 'plain' && s.round === 1));
    expect(keptShare(unpaired, 'rollcall', 'write-leader')).toBeCloseTo(0.8);
  });

  it('puts the goals on Rollcall/etcd over TLS and on the share kept', () => {
    const figs = tlsFigures(samples);
    const byName = (n: string) => figs.find((f) => f.name === n)!;
    const overTls = byName('write leader 64c throughput, TLS');
    expect(overTls.goal).toBe('>= 2');
    expect(overTls.rollcall).toBe(550);
    expect(overTls.etcd).toBe(170);
    const kept = byName('write leader 64c throughput kept over TLS (TLS / plain)');
    expect(kept.goal).toBe('>= 1');
    expect(kept.ratio).toBeCloseTo(0.7 / 0.6);
    expect(byName('write leader 64c CPU per write TLS adds, all 3 nodes').rollcall).toBeCloseTo(70);
    expect(byName('write leader 64c CPU per write TLS adds, all 3 nodes').etcd).toBeCloseTo(180);
    // Workloads that did not run leave no rows.
    expect(figs.some((f) => f.name.startsWith('read linearizable'))).toBe(false);
  });

  it('rotates the order of the configurations and reverses every other slot', () => {
    expect(slotOrder(['a', 'b', 'c', 'd'], 0)).toEqual(['a', 'b', 'c', 'd']);
    expect(slotOrder(['a', 'b', 'c', 'd'], 1)).toEqual(['a', 'd', 'c', 'b']);
    expect(slotOrder(['a', 'b', 'c', 'd'], 2)).toEqual(['c', 'd', 'a', 'b']);
  });
});

describe('the load generator over TLS', () => {
  let dir: string;
  let server: Server;
  let port: number;
  let ca: string;
  let handshakes = 0;
  let requests = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'bench-tls-test-'));
    const authority = await CertificateAuthority.create(dir);
    const files = await authority.issue('server', { ips: ['127.0.0.1'] });
    ca = authority.certFile;
    server = createServer({ cert: await readFile(files.cert), key: await readFile(files.key) }, (req, res) => {
      requests++;
      req.resume();
      res.end('{"ok":true}');
    });
    server.on('secureConnection', () => handshakes++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('reuses each connection for every request, connects before the clock starts', async () => {
    handshakes = 0;
    requests = 0;
    let requestsAtStart = -1;
    const req = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1');
    const r = await runLoad({
      targets: [targetOf(`https://127.0.0.1:${port}`, clientTlsOf({ ca }))],
      connections: 4,
      durationMs: 10_000,
      maxRequests: 200,
      timeoutMs: 5000,
      connectFirst: true,
      onStart: () => {
        requestsAtStart = requests;
      },
      request: () => req,
    });
    expect(r.ok).toBe(200);
    expect(r.errors).toBe(0);
    expect(r.connectionsOpened).toBe(4);
    expect(handshakes).toBe(4);
    expect(requestsAtStart).toBe(0);
    expect(requests).toBe(200);
  });

  it('refuses an https target without a CA, and a server its CA did not sign', async () => {
    expect(() => targetOf(`https://127.0.0.1:${port}`)).toThrow(/TLS/);
    const other = await CertificateAuthority.create(path.join(dir, 'other'));
    const r = await runLoad({
      targets: [targetOf(`https://127.0.0.1:${port}`, clientTlsOf({ ca: other.certFile }))],
      connections: 1,
      durationMs: 300,
      timeoutMs: 1000,
      request: () => Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1'),
    });
    expect(r.ok).toBe(0);
  });
});
