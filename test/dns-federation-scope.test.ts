/**
 * A scoped DNS token and another datacenter's names, on two real single-node datacenters
 * (separate processes, real LevelDB, gossip and lookups over HTTP): dc-a answers DNS with a
 * --token-file token limited to namespace `prod`; dc-b has no token checks (DNS carries no
 * token). A `.dc-b.dc` name no case of which the token may read is NXDOMAIN, as before, and
 * dc-b gets no request for it (counted in dc-b's own request metrics); a name in scope is
 * asked of dc-b and answered with its instances.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../scripts/local-cluster.js';
import { dataOf, queryUdp } from './helpers/dns.js';
import { federationArgs } from './helpers/federation.js';
import { http, register, waitFor } from './helpers/http.js';

const SECRET = 'dns-federation-scope-secret';
const ADMIN = 'scope-admin-0123456789abcdef';
const PROD_READER = 'scope-prod-reader-0123456789abcdef';
/** The routes a DNS lookup of another datacenter's name asks there (src/dns/remote.ts). */
const LOOKUP_ROUTES = ['/v1/namespaces/:ns/services/:svc/instances', '/v1/services'];

async function ask(port: number, name: string): Promise<{ rcode: string; data: string[] }> {
  const p = (await queryUdp(port, name, 'A', { timeoutMs: 5_000 })) as Awaited<ReturnType<typeof queryUdp>> & {
    rcode: string;
  };
  return { rcode: p.rcode, data: dataOf<string>(p.answers, 'A').sort() };
}

/** How many requests dc-b's node served on the lookup routes, from its latency histogram's counts. */
async function lookupsServed(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('rollcall_http_request_duration_seconds_count{')) continue;
    if (LOOKUP_ROUTES.some((r) => line.includes(`route="${r}"`)))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

describe("a scoped DNS token and another datacenter's names, on real datacenters", () => {
  let dir: string;
  let a: LocalCluster;
  let b: LocalCluster;
  let dnsPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rollcall-dns-fed-scope-'));
    const tokenFile = path.join(dir, 'tokens.json');
    writeFileSync(
      tokenFile,
      JSON.stringify([
        { token: ADMIN, role: 'admin', name: 'admin' },
        { token: PROD_READER, role: 'read', namespaces: ['prod'], name: 'dns-prod' },
      ]),
      { mode: 0o600 },
    );
    const dnsTokenFile = path.join(dir, 'dns-token');
    writeFileSync(dnsTokenFile, `${PROD_READER}\n`, { mode: 0o600 });
    dnsPort = await freePort();
    a = await LocalCluster.start({
      size: 1,
      extraArgs: [
        ...federationArgs('dc-a', [], { secret: SECRET, roundMs: 200 }),
        '--token-file',
        tokenFile,
        '--dns-token-file',
        dnsTokenFile,
      ],
      nodeEnv: () => ({ ROLLCALL_DNS_LISTEN: `127.0.0.1:${dnsPort}` }),
    });
    b = await LocalCluster.start({
      size: 1,
      extraArgs: federationArgs('dc-b', [a.node('n1').url], { secret: SECRET, roundMs: 200 }),
    });
    const bUrl = b.node('n1').url;
    await waitFor('dc-b takes writes', async () => {
      const r = await register(bUrl, 'prod', 'orders', 'p1', { address: '10.8.0.1', port: 80 });
      return r.status === 200 ? true : undefined;
    });
    expect((await register(bUrl, 'dev', 'orders', 'd1', { address: '10.8.0.2', port: 80 })).status).toBe(200);
    await waitFor('dc-a sees dc-b alive', async () => {
      const r = await http<{ datacenters: { name: string; status: string }[] }>(
        'GET',
        `${a.node('n1').url}/v1/federation`,
        undefined,
        { authorization: `Bearer ${ADMIN}` },
      );
      return r.body.datacenters?.some((d) => d.name === 'dc-b' && d.status === 'alive');
    });
  }, 120_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a name in scope is asked of dc-b and answered', async () => {
    const before = await lookupsServed(b.node('n1').url);
    expect(await ask(dnsPort, 'orders.service.prod.ns.dc-b.dc.consul')).toEqual({
      rcode: 'NOERROR',
      data: ['10.8.0.1'],
    });
    expect(await lookupsServed(b.node('n1').url)).toBeGreaterThan(before);
  });

  it('a name out of scope in every case is NXDOMAIN, and dc-b gets no request for it', async () => {
    const before = await lookupsServed(b.node('n1').url);
    for (const name of [
      'orders.service.dev.ns.dc-b.dc.consul',
      'ORDERS.service.DEV.ns.dc-b.dc.consul',
      'orders.service.dc-b.dc.consul', // the default namespace, not prod either
      'nothing.service.dev.ns.dc-b.dc.consul',
    ])
      expect(await ask(dnsPort, name), name).toEqual({ rcode: 'NXDOMAIN', data: [] });
    // A question it was asked would be counted by now: dc-b answers before dc-a does.
    expect(await lookupsServed(b.node('n1').url)).toBe(before);
    // The same name in scope still answers, so dc-b was reachable all along.
    expect((await ask(dnsPort, 'orders.service.PROD.ns.dc-b.dc.consul')).data).toEqual(['10.8.0.1']);
  });
});
