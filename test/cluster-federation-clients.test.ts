/**
 * Cross-datacenter requests from every entry point but the raw HTTP API (issue 18), with
 * real processes: two single-node datacenters on loopback, federated with a shared secret
 * (dc-b joins dc-a), gossiping every 200 ms. Instances live in dc-b only; everything below
 * asks dc-a's node:
 *
 * - the SDK with a per-client and a per-call `dc`: lists, a discover cache, a watch and a
 *   blocking listing of dc-b (with writes into dc-b meanwhile), never mixed with dc-a's own
 *   (empty) answers;
 *   the disk snapshot of dc-b's service is a file of its own; typed errors for an unknown
 *   datacenter and, once dc-b is killed, an unreachable one;
 * - the CLI's `--dc` flag and ROLLCALL_DC;
 * - DNS: `<svc>.service.dc-b.dc.consul` (A, SRV, tag and RFC 2782 forms) answered with dc-b's
 *   instances by dc-a's DNS server, over dns-packet and `dig`; an unknown datacenter is
 *   NXDOMAIN, and with dc-b down a name not cached yet is SERVFAIL.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { DecodedPacket } from 'dns-packet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort, LocalCluster } from '../scripts/local-cluster.js';
import {
  ApiError,
  DatacenterUnreachableError,
  RollcallClient,
  UnavailableError,
  UnknownDatacenterError,
  type WatchEvent,
} from '../src/client/index.js';
import { dataOf, queryTcp, queryUdp } from './helpers/dns.js';
import { federationArgs, waitForDatacentersAlive } from './helpers/federation.js';
import { register, waitFor, waitForLeader } from './helpers/http.js';

const SECRET = 'federation-clients-secret';
const ROUND_MS = 200;
const NS = 'default'; // what DNS names without `.ns` look in (--consul-namespace)

let a: LocalCluster;
let b: LocalCluster;
let dnsPort = 0;
let snapshotDir = '';
const clients: RollcallClient[] = [];
const logs: string[] = [];

const dcArgs = (dc: string, join: string[] = []) => federationArgs(dc, join, { secret: SECRET, roundMs: ROUND_MS });
const client = (options: { dc?: string; snapshotDir?: string } = {}): RollcallClient => {
  const c = new RollcallClient({
    endpoints: a.nodes[0]!.url,
    requestTimeoutMs: 8_000,
    discoverTimeoutMs: 8_000,
    ...options,
  });
  clients.push(c);
  return c;
};
const rollcall = async (
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> => {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI_PATH, ...args], {
      timeout: 20_000,
      env: { ...process.env, ROLLCALL_DC: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
};
const ids = (instances: readonly { id: string }[]) => instances.map((i) => i.id).sort();
/** dns-packet decodes the response code, though its types leave it out. */
const rcode = (p: DecodedPacket): string => (p as DecodedPacket & { rcode: string }).rcode;

beforeAll(async () => {
  dnsPort = await freePort();
  snapshotDir = await mkdtemp(path.join(tmpdir(), 'rollcall-fed-clients-'));
  const onLog = (dc: string) => (id: string, line: string) => logs.push(`${dc}/${id} ${line}`);
  a = await LocalCluster.start({
    size: 1,
    extraArgs: dcArgs('dc-a'),
    onLog: onLog('dc-a'),
    nodeEnv: () => ({ ROLLCALL_DNS_LISTEN: `127.0.0.1:${dnsPort}` }),
  });
  b = await LocalCluster.start({ size: 1, extraArgs: dcArgs('dc-b', [a.nodes[0]!.url]), onLog: onLog('dc-b') });
  await Promise.all([waitForLeader([a.nodes[0]!.url], 60_000), waitForLeader([b.nodes[0]!.url], 60_000)]);
  await waitForDatacentersAlive([a.nodes[0]!.url, b.nodes[0]!.url], ['dc-a', 'dc-b']);
  for (const [id, address, tags] of [
    ['web-1', '10.9.8.7', ['v1']],
    ['web-2', '10.9.8.8', ['v2']],
  ] as const) {
    const r = await register(b.nodes[0]!.url, NS, 'web', id, { address, port: 8080, tags });
    expect(r.status).toBe(200);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all([a?.close(), b?.close()]);
  if (snapshotDir !== '') await rm(snapshotDir, { recursive: true, force: true });
});

describe('cross-datacenter requests from the SDK, the CLI and DNS', () => {
  it('SDK: a client with dc reads the other datacenter; its own datacenter stays apart', async () => {
    const local = client();
    const remote = client({ dc: 'dc-b' });
    expect((await local.list({ namespace: NS, service: 'web' })).instances).toEqual([]);
    const listed = await remote.list({ namespace: NS, service: 'web' });
    expect(ids(listed.instances)).toEqual(['web-1', 'web-2']);
    // Per call, on a client without a default.
    expect(ids((await local.list({ namespace: NS, service: 'web', dc: 'dc-b' })).instances)).toEqual([
      'web-1',
      'web-2',
    ]);
    const one = await local.get({ namespace: NS, service: 'web', id: 'web-1', dc: 'dc-b' });
    expect(one.instance?.address).toBe('10.9.8.7');
    expect((await remote.clusterStatus()).members.map((m) => m.id)).toEqual(['n1']);
  }, 30_000);

  it('SDK: discover caches per datacenter, and snapshots go to a file of their own', async () => {
    const c = client({ snapshotDir });
    const here = await c.discover({ namespace: NS, service: 'web' });
    const there = await c.discover({ namespace: NS, service: 'web', dc: 'dc-b' });
    expect(here.instances).toEqual([]);
    expect(ids(there.instances)).toEqual(['web-1', 'web-2']);
    // Asked again in the other order, from the caches now: still apart.
    expect((await c.discover({ namespace: NS, service: 'web' })).instances).toEqual([]);
    expect(ids((await c.discover({ namespace: NS, service: 'web', dc: 'dc-b' })).instances)).toEqual([
      'web-1',
      'web-2',
    ]);
    const file = path.join(snapshotDir, '@dc', 'dc-b', NS, 'web.json');
    await waitFor('the dc-b snapshot on disk', () => existsSync(file), 10_000);
    const snap = JSON.parse(await readFile(file, 'utf8')) as { datacenter?: string; instances: { id: string }[] };
    expect(snap.datacenter).toBe('dc-b');
    expect(ids(snap.instances)).toEqual(['web-1', 'web-2']);
  }, 30_000);

  it('SDK: a watch of the other datacenter sees a write made there through the client', async () => {
    const c = client();
    const watch = c.watch({ namespace: NS, service: 'web', initial: true, dc: 'dc-b' });
    const events: WatchEvent[] = [];
    const consumed = (async () => {
      for await (const ev of watch) {
        events.push(ev);
        if (ev.type === 'put' && ev.instance.id === 'web-3') return;
      }
    })();
    await waitFor('the initial reset', () => events.length > 0, 15_000);
    expect(events[0]!.type).toBe('reset');
    const reset = events[0] as Extract<WatchEvent, { type: 'reset' }>;
    expect(ids(reset.instances)).toEqual(['web-1', 'web-2']);
    const put = await c.putInstance(
      { namespace: NS, service: 'web', id: 'web-3', address: '10.9.8.9', port: 8080, tags: ['v1'] },
      undefined,
      { dc: 'dc-b' },
    );
    await consumed;
    watch.close();
    const last = events.at(-1) as Extract<WatchEvent, { type: 'put' }>;
    expect(last.instance.id).toBe('web-3');
    expect(last.revision).toBe(put.revision);
    // Applied in dc-b, not here.
    expect((await c.list({ namespace: NS, service: 'web' })).instances).toEqual([]);
    expect(ids((await c.list({ namespace: NS, service: 'web', dc: 'dc-b' })).instances)).toEqual([
      'web-1',
      'web-2',
      'web-3',
    ]);
    await c.deregister({ namespace: NS, service: 'web', id: 'web-3', dc: 'dc-b' });
  }, 40_000);

  it('SDK: a blocking listing waits in the other datacenter, and wakes on a change there', async () => {
    const c = client({ dc: 'dc-b' });
    const first = await c.listPage({ namespace: NS, service: 'web' });
    // Longer than an attempt's deadline (2.5 s): the client stretches its deadlines by the wait.
    const started = performance.now();
    const idle = await c.listPage({ namespace: NS, service: 'web', index: first.serviceRevision, waitMs: 3_500 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(idle.serviceRevision).toBe(first.serviceRevision);
    const woken = c.listPage({ namespace: NS, service: 'web', index: first.serviceRevision, waitMs: 20_000 });
    expect((await register(b.nodes[0]!.url, NS, 'web', 'web-4', { address: '10.9.8.10', port: 8080 })).status).toBe(
      200,
    );
    const next = await woken;
    expect(next.serviceRevision).toBeGreaterThan(first.serviceRevision);
    expect(ids(next.instances)).toContain('web-4');
    await c.deregister({ namespace: NS, service: 'web', id: 'web-4' });
  }, 40_000);

  it('SDK: an unknown datacenter is an UnknownDatacenterError', async () => {
    const err = await client()
      .list({ namespace: NS, service: 'web', dc: 'dc-nowhere' })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(UnknownDatacenterError);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as UnknownDatacenterError).code).toBe('UNKNOWN_DATACENTER');
    expect((err as UnknownDatacenterError).status).toBe(400);
    expect((err as UnknownDatacenterError).datacenter).toBe('dc-nowhere');
  });

  it('CLI: --dc and ROLLCALL_DC list the other datacenter; an unknown one exits 5', async () => {
    const endpoints = ['--endpoints', a.nodes[0]!.url];
    const flag = await rollcall([
      'list',
      '--namespace',
      NS,
      '--service',
      'web',
      '--dc',
      'dc-b',
      '--json',
      ...endpoints,
    ]);
    expect(flag.code).toBe(0);
    expect(ids((JSON.parse(flag.stdout) as { instances: { id: string }[] }).instances)).toEqual(['web-1', 'web-2']);
    const env = await rollcall(['list', '--namespace', NS, '--service', 'web', '--json', ...endpoints], {
      ROLLCALL_DC: 'dc-b',
    });
    expect(env.code).toBe(0);
    expect(ids((JSON.parse(env.stdout) as { instances: { id: string }[] }).instances)).toEqual(['web-1', 'web-2']);
    const own = await rollcall(['list', '--namespace', NS, '--service', 'web', '--json', ...endpoints]);
    expect((JSON.parse(own.stdout) as { instances: unknown[] }).instances).toEqual([]);
    const unknown = await rollcall([
      'list',
      '--namespace',
      NS,
      '--service',
      'web',
      '--dc',
      'dc-x',
      '--json',
      ...endpoints,
    ]);
    expect(unknown.code).toBe(5);
    expect(JSON.parse(unknown.stderr)).toMatchObject({ error: { code: 'UNKNOWN_DATACENTER', datacenter: 'dc-x' } });
    const bad = await rollcall(['list', '--namespace', NS, '--service', 'web', '--dc', 'no_such!', ...endpoints]);
    expect(bad.code).toBe(2);
  }, 60_000);

  it("DNS: dc-a's server answers <svc>.service.dc-b.dc.consul with dc-b's instances", async () => {
    const a1 = await queryUdp(dnsPort, 'web.service.dc-b.dc.consul', 'A');
    expect(rcode(a1)).toBe('NOERROR');
    expect(dataOf<string>(a1.answers, 'A').sort()).toEqual(['10.9.8.7', '10.9.8.8']);
    // The datacenter label in any case; the older form without `.dc`.
    const upper = await queryUdp(dnsPort, 'web.service.DC-B.dc.consul', 'A');
    expect(dataOf<string>(upper.answers, 'A').sort()).toEqual(['10.9.8.7', '10.9.8.8']);
    const old = await queryTcp(dnsPort, 'web.service.dc-b.consul', 'A');
    expect(dataOf<string>(old.answers, 'A').sort()).toEqual(['10.9.8.7', '10.9.8.8']);
    const tagged = await queryUdp(dnsPort, 'v1.web.service.dc-b.dc.consul', 'A');
    expect(dataOf<string>(tagged.answers, 'A')).toEqual(['10.9.8.7']);
    const srv = await queryTcp(dnsPort, '_web._v2.service.dc-b.dc.consul', 'SRV');
    expect(dataOf<{ port: number; target: string }>(srv.answers, 'SRV')).toEqual([
      expect.objectContaining({ port: 8080, target: '0a090808.addr.dc-b.consul' }),
    ]);
    expect(dataOf<string>(srv.additionals, 'A')).toEqual(['10.9.8.8']);
    // This datacenter's own name is answered locally: dc-a has no `web`.
    expect(rcode(await queryUdp(dnsPort, 'web.service.dc-a.dc.consul', 'A'))).toBe('NXDOMAIN');
    expect(rcode(await queryUdp(dnsPort, 'nothing.service.dc-b.dc.consul', 'A'))).toBe('NXDOMAIN');
    const unknown = await queryUdp(dnsPort, 'web.service.dc-nowhere.dc.consul', 'A');
    expect(rcode(unknown)).toBe('NXDOMAIN');
  }, 30_000);

  it.skipIf(!existsSync('/usr/bin/dig'))('DNS: dig resolves the other datacenter too', async () => {
    const { stdout } = await promisify(execFile)('dig', [
      '@127.0.0.1',
      '-p',
      String(dnsPort),
      '+short',
      '+time=3',
      '+tries=1',
      'web.service.dc-b.dc.consul',
    ]);
    expect(stdout.trim().split('\n').sort()).toEqual(['10.9.8.7', '10.9.8.8']);
  });

  it('with dc-b down: the SDK gets DatacenterUnreachableError, DNS SERVFAIL, never a hang', async () => {
    await b.close();
    const started = performance.now();
    const err = await client({ dc: 'dc-b' })
      .list({ namespace: NS, service: 'web' })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(DatacenterUnreachableError);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as DatacenterUnreachableError).code).toBe('DATACENTER_UNREACHABLE');
    expect((err as DatacenterUnreachableError).datacenter).toBe('dc-b');
    // A name not cached yet: asked of dc-b, which does not answer.
    const dns = await queryUdp(dnsPort, 'db.service.dc-b.dc.consul', 'A', { timeoutMs: 5_000 });
    expect(rcode(dns)).toBe('SERVFAIL');
    expect(performance.now() - started).toBeLessThan(8_000);
    // dc-a's own requests are not slowed.
    expect((await client().list({ namespace: NS, service: 'web' })).instances).toEqual([]);
  }, 30_000);
});
